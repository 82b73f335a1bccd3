"""The timeline's service texts in real headless Chromium, behind the real complaints service: the entries arrive as
message keys with parameters and the console writes them from its zh-CN and en tables (statuses, strategies and the
routing rule translated too), and so does the description of a complaint the service opened from a TMS incident;
someone's own words and a row stored before keys existed show as written.
Screenshots in zh-CN and en under TEST_OUTPUT_DIR."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from playwright.async_api import expect

pytest.importorskip("crm_complaints", reason="complaints service not installed")
complaints_support = pytest.importorskip("complaints_support", reason="complaints test helpers not on the path")

from crm_common.events.logistics import ShipmentDelayed  # noqa: E402
from crm_complaints.complaints.incidents import Incident, open_from_shipment_events  # noqa: E402
from crm_complaints.complaints.models import TimelineEntry  # noqa: E402
from crm_devbroker.testing import served_on_loopback  # noqa: E402
from gateway_support import auth  # noqa: E402
from test_complaint_workflow import ALL_WEEK, ALWAYS_OPEN, gateway_before_real_complaints, ok  # noqa: E402
from test_console_browser import OUTPUT, _chromium  # noqa: E402
from test_survey_browser import CHROMIUM_FLAGS  # noqa: E402

pytestmark = pytest.mark.browser
OLD_TEXT = "resolution breach: escalated to transport-lead"  # as the service wrote it before message keys
DELAY_MINUTES = 1500  # past the complaints service's delay threshold; the console writes it as a number of the language (1,500)


async def test_timeline_texts_from_the_service_are_written_in_the_readers_language(database_factory, gateway_db):
    from playwright.async_api import async_playwright

    executable = _chromium()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with gateway_before_real_complaints(database_factory, gateway_db) as (app, settings, env):
        async with served_on_loopback(app) as url, httpx.AsyncClient(base_url=url) as client, async_playwright() as p:
            admin = auth(settings, "admin", "admin-1")
            agent = auth(settings, "agent", "li-na", team="transport")
            customer = auth(settings, "customer", "portal-x1", customer_id="X1")
            ok(await client.put("/api/v1/teams/transport", headers=admin, json={"calendar": ALWAYS_OPEN}))
            ok(await client.put("/api/v1/agents/li-na", headers=admin, json={"team_id": "transport", "shifts": ALL_WEEK}))
            filed = ok(
                await client.post(
                    "/api/v1/complaints", headers=customer, json={"category": "delay", "description": "两箱货晚到三天", "channel": "web"}
                ),
                201,
            )
            path = f"/api/v1/complaints/{filed['id']}"
            assert ok(await client.get(path, headers=admin))["agent_id"] == "li-na"  # the built-in delay rule, li-na on shift
            ok(await client.post(f"{path}/status", headers=agent, json={"status": "waiting_on_customer", "reason": "请提供照片"}))
            ok(await client.post(f"{path}/customer-messages", headers=customer, json={"body": "照片已上传"}))
            async with env.db.transaction() as session:
                session.add(
                    TimelineEntry(
                        complaint_id=filed["id"],
                        at=dt.datetime.now(dt.UTC),
                        kind="escalated",
                        visibility="internal",
                        body=OLD_TEXT,
                        data={},
                    )
                )
                # a complaint the service opens from a TMS incident: its description is the service's text (a message key)
                delayed = ShipmentDelayed(
                    order_id="O-77", customer_id="X1", delay_minutes=DELAY_MINUTES, reason="港口拥堵", reported_at=dt.datetime.now(dt.UTC)
                )
                [(tms_complaint, how)] = await open_from_shipment_events(session, [Incident(delayed, "evt-tms-1")], settings=env.settings)
                assert how == "filed"

            browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                context = await browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
                page = await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(url + "/console")
                await page.wait_for_selector("#login-user option[value='agent']", state="attached")
                await page.select_option("#login-user", "agent")
                await page.click("#login-btn")
                await page.wait_for_selector("#queues", state="visible")
                await page.click(f"#queue-list li[data-id='{filed['id']}']")
                timeline = page.locator("#timeline")
                await expect(timeline).to_contain_text("已分配 — 按规则 内置： 延误 → transport（最少负载）分派给 li-na（transport 组）")
                await expect(timeline).to_contain_text("已分配 → 等待客户：请提供照片")  # statuses translated, the reason as written
                await expect(timeline).to_contain_text("等待客户 → 处理中：客户已回复")
                await expect(timeline).to_contain_text("照片已上传")  # the customer's own words
                await expect(timeline).to_contain_text(OLD_TEXT)  # a row without a key: its text as stored
                assert "Status " not in await timeline.inner_text()  # no English service text left in zh-CN
                await page.screenshot(path=str(OUTPUT / "timeline-zh-CN.png"), full_page=True)
                description = page.locator("#complaint-description")
                await expect(description).to_have_text("两箱货晚到三天")  # the filer's own words as written
                await page.click(f"#queue-list li[data-id='{tms_complaint.id}']")
                await expect(description).to_have_text("[TMS] 货物延误 1,500 分钟（订单 O-77）：港口拥堵")
                await page.click(f"#queue-list li[data-id='{filed['id']}']")

                await page.click("#lang-toggle")
                await expect(timeline).to_contain_text("Assigned to li-na (team transport) by rule built-in: Delay → transport, Least load")
                await expect(timeline).to_contain_text("Assigned → Waiting on customer: 请提供照片")
                await expect(timeline).to_contain_text("Waiting on customer → In progress: the customer replied")
                await expect(timeline).to_contain_text(OLD_TEXT)
                await page.screenshot(path=str(OUTPUT / "timeline-en.png"), full_page=True)
                await page.click(f"#queue-list li[data-id='{tms_complaint.id}']")
                await expect(description).to_have_text("[TMS] Shipment delayed 1,500 minutes (order O-77): 港口拥堵")
                assert not errors, errors
                await context.close()
            finally:
                await browser.close()
