"""One journey in real headless Chromium across the real complaints and notifications services and make run's message
sink: the admin edits a routing rule in the console, the next complaint follows it (the complaint names the rule), the
admin resolves it, the notifications service emails the resolution through SMTP to the sink, the customer opens the
survey link found in the sink's copy of that email (`/api/v1/dev/sent`) and answers it, then the admin reopens the
complaint and the old link is refused. Kafka is the one thing left out: the complaints outbox is handed to the
notifications inbox processor as the consumer would. Screenshots under TEST_OUTPUT_DIR."""

from __future__ import annotations

import asyncio
import re
import urllib.parse

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select

pytest.importorskip("crm_complaints", reason="complaints service not installed")
pytest.importorskip("crm_notifications", reason="notifications service not installed")
complaints_support = pytest.importorskip("complaints_support", reason="complaints test helpers not on the path")
notifications_support = pytest.importorskip("notifications_support", reason="notifications test helpers not on the path")

from crm_common.consumer import Delivery, InboxProcessor  # noqa: E402
from crm_common.outbox import outbox_table  # noqa: E402
from crm_devbroker.broker import free_port  # noqa: E402
from crm_devbroker.testing import RefusingDeadLetters, served_on_loopback, wait_until  # noqa: E402
from crm_notifications.clock import ManualClock  # noqa: E402
from gateway_support import auth  # noqa: E402
from test_complaint_workflow import ALL_WEEK, ALWAYS_OPEN, gateway_before_real_complaints, ok  # noqa: E402
from test_console_browser import OUTPUT, _chromium  # noqa: E402
from test_dev_sink import dev_sink  # noqa: E402
from test_survey_browser import CHROMIUM_FLAGS  # noqa: E402

pytestmark = pytest.mark.browser
CUSTOMER_EMAIL = "chen.wei@example.cn"


class OutboxToNotifications:
    """The complaints outbox rows not handed over yet, through the notifications service's real inbox processor."""

    def __init__(self, complaints_env, notifications):
        self.complaints_db = complaints_env.db
        self.processor = InboxProcessor(notifications.db, notifications.handler, RefusingDeadLetters(), max_attempts=1)
        self.after = 0

    async def hand_over(self) -> list[str]:
        async with self.complaints_db.sessions() as session:
            rows = (
                await session.execute(
                    select(outbox_table.c.id, outbox_table.c.key, outbox_table.c.body, outbox_table.c.event_type)
                    .where(outbox_table.c.id > self.after)
                    .order_by(outbox_table.c.id)
                )
            ).all()
        if rows:
            await self.processor.process([Delivery("crm.complaints", 0, r.id, r.key.encode(), r.body.encode()) for r in rows])
            self.after = rows[-1].id
        return [r.event_type for r in rows]


async def test_rule_edit_then_resolution_email_survey_from_the_sink_and_reopen(database_factory, gateway_db, tmp_path):
    from playwright.async_api import async_playwright

    executable = _chromium()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    store = dev_sink.SentStore(tmp_path / "sent.jsonl")
    smtp_port, provider_port = free_port(), free_port()
    sink = asyncio.create_task(dev_sink.serve(store, smtp_port, provider_port))
    nf_url = await database_factory.create("sqlite", "journey_nf")
    await notifications_support.migrated(nf_url)
    # the clock of a Monday 10:00 in Shanghai: outside quiet hours whenever the test runs
    notifications = await notifications_support.make_runtime(
        notifications_support.settings_for(nf_url, smtp_port=smtp_port, provider_url=f"http://127.0.0.1:{provider_port}"),
        ManualClock(notifications_support.T0),
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{provider_port}") as probe:

            async def sink_up() -> bool:
                try:
                    return (await probe.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(sink_up, timeout_s=30)
        await notifications_support.EventFeeder(notifications).feed(
            notifications_support.customer_registered(
                "X1", [{"contact_id": "X1-c1", "name": "陈伟", "email": CUSTOMER_EMAIL, "phone": "+8613800000011", "language": "zh-CN"}]
            )
        )
        async with gateway_before_real_complaints(database_factory, gateway_db, dev_sent_store=str(store.path)) as (app, settings, env):
            outbox = OutboxToNotifications(env, notifications)
            async with served_on_loopback(app) as url, httpx.AsyncClient(base_url=url) as client, async_playwright() as p:
                admin = auth(settings, "admin", "admin-1")
                for team in ("transport", "claims"):
                    ok(await client.put(f"/api/v1/teams/{team}", headers=admin, json={"calendar": ALWAYS_OPEN}))
                ok(
                    await client.put(
                        "/api/v1/agents/zhao-lei", headers=admin, json={"team_id": "claims", "name": "赵磊", "shifts": ALL_WEEK}
                    )
                )
                ok(
                    await client.put(
                        "/api/v1/routing-rules", headers=admin, json=[{"category": "delay", "team": "transport", "name": "延误"}]
                    )
                )

                browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
                try:
                    context = await browser.new_context(viewport={"width": 1400, "height": 1100}, locale="zh-CN")
                    page = await context.new_page()
                    problems: list[str] = []
                    page.on("pageerror", lambda exc: problems.append(str(exc)))
                    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
                    await page.goto(url + "/console")
                    await page.wait_for_selector("#login-user option[value='admin']", state="attached")
                    await page.select_option("#login-user", "admin")
                    await page.click("#login-btn")

                    # 1. the routing rule: delays now go to claims
                    await page.click("#tab-admin")
                    row = page.locator("#rules-table .rule-row").first
                    await expect(row.locator(".rule-name")).to_have_value("延误")
                    await row.locator(".rule-name").fill("延误归理赔")
                    await row.locator(".rule-team").select_option("claims")
                    await page.click("#rules-save")
                    await expect(page.locator("#rules-error")).to_have_text("")
                    await expect(row.locator(".rule-team")).to_have_value("claims")

                    # 2. the next delay is filed (by phone: the contact is known) and follows the rule
                    filed = ok(
                        await client.post(
                            "/api/v1/complaints",
                            headers=admin,
                            json={
                                "phone": "+8613800000011",
                                "category": "delay",
                                "description": "两箱货晚到三天",
                                "channel": "call_center",
                            },
                        ),
                        201,
                    )
                    assert (filed["team_id"], filed["agent_id"]) == ("claims", "zhao-lei")
                    await page.click("#tab-callcenter")
                    await page.fill("#search-input", filed["number"])
                    await page.click("#search-btn")
                    await page.click(f"#result-complaints li[data-id='{filed['id']}']")
                    await expect(page.locator("#complaint-facts .rule .v")).to_have_text("延误归理赔 → claims")  # the console's zh-CN
                    await expect(page.locator("#timeline")).to_contain_text(
                        "按规则 延误归理赔 → claims（最少负载）分派给 zhao-lei（claims 组）"
                    )

                    # 3. resolved in the console; the resolution email goes through notifications and SMTP into the sink
                    await page.fill("#action-text", "redelivered")
                    await page.click("#act-resolve")
                    await expect(page.locator("#complaint-panel")).to_have_attribute("data-status", "resolved")
                    assert "ComplaintResolved" in await outbox.hand_over()
                    await notifications.dispatcher.run_once()

                    async def resolution_mail() -> dict | None:
                        items = ok(await client.get("/api/v1/dev/sent", headers=admin, params={"channel": "email"}))["items"]
                        return next((m for m in items if filed["number"] in (m.get("subject") or "") and "survey" in m["body"]), None)

                    await wait_until(resolution_mail, timeout_s=30)
                    mail = await resolution_mail()
                    assert mail["to"] == [CUSTOMER_EMAIL]
                    await page.click("#tab-sent")
                    await expect(page.locator("#sent-table .sent-item").first).to_contain_text(filed["number"])
                    await page.screenshot(path=str(OUTPUT / "journey-sent-zh-CN.png"), full_page=True)

                    # 4. the customer follows the link in that email (the sink's copy), on this gateway
                    [link] = re.findall(r"https?://\S+/survey/\S+", mail["body"])
                    parts = urllib.parse.urlsplit(link)
                    survey_link = f"{url}{parts.path}?{parts.query}"
                    customer_page = await context.new_page()
                    customer_page.on("pageerror", lambda exc: problems.append(str(exc)))
                    await customer_page.goto(survey_link)
                    await customer_page.wait_for_selector("#survey-form", state="visible")
                    await expect(customer_page.locator("#survey-intro")).to_contain_text(filed["number"])
                    await customer_page.check("#score-5")
                    await customer_page.click("#survey-submit")
                    await customer_page.wait_for_selector("#survey-message:not(:empty)")
                    await customer_page.screenshot(path=str(OUTPUT / "journey-survey-zh-CN.png"), full_page=True)

                    # 5. the admin reopens the resolved complaint; the answered link stays answered, a new resolution needs a new one
                    await page.click("#tab-callcenter")
                    await page.fill("#action-text", "customer called again")
                    await page.click("#act-reopen")
                    await expect(page.locator("#complaint-panel")).to_have_attribute("data-status", "in_progress")
                    await expect(page.locator("#timeline [data-kind='reopened']")).to_have_count(1)
                    await page.screenshot(path=str(OUTPUT / "journey-reopened-zh-CN.png"), full_page=True)
                    assert "ComplaintReopened" in await outbox.hand_over()
                    assert not problems, problems
                    await context.close()
                finally:
                    await browser.close()
                final = ok(await client.get(f"/api/v1/complaints/{filed['id']}", headers=admin))
                assert (final["status"], final["survey_score"], final["reopen_count"]) == ("in_progress", 5, 1)
                old_answer = {"token": urllib.parse.parse_qs(parts.query)["token"][0], "score": 1}
                reopened = await client.post(f"/api/v1/survey/{filed['id']}", json=old_answer)
                assert (reopened.status_code, reopened.json()["current_status"]) == (409, "in_progress")
                ok(await client.post(f"/api/v1/complaints/{filed['id']}/resolve", headers=admin, json={"outcome": "refunded"}))
                void = await client.post(f"/api/v1/survey/{filed['id']}", json=old_answer)
                assert void.status_code == 403, void.text  # the new resolution has its own link: the old one is void
    finally:
        await notifications.stop()
        sink.cancel()
        await asyncio.gather(sink, return_exceptions=True)
