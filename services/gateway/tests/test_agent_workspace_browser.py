"""The agent workspace in real headless Chromium, behind the real complaints service: the agent finds a queued
complaint in "my team's unassigned", claims it, replies, waits on the customer, resolves and closes it; the
queues and the complaint follow. Screenshots in zh-CN and en under TEST_OUTPUT_DIR."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

pytest.importorskip("crm_complaints", reason="complaints service not installed")
complaints_support = pytest.importorskip("complaints_support", reason="complaints test helpers not on the path")

from crm_devbroker.testing import served_on_loopback  # noqa: E402
from gateway_support import auth  # noqa: E402
from test_complaint_workflow import ALL_WEEK, ALWAYS_OPEN, gateway_before_real_complaints, ok  # noqa: E402
from test_console_browser import OUTPUT, _chromium  # noqa: E402
from test_dev_sink import dev_sink  # noqa: E402
from test_survey_browser import CHROMIUM_FLAGS  # noqa: E402

pytestmark = pytest.mark.browser


async def test_agent_works_a_complaint_from_the_queue_to_closed(database_factory, gateway_db, tmp_path):
    from playwright.async_api import async_playwright

    executable = _chromium()
    sent = dev_sink.SentStore(tmp_path / "sent.jsonl")  # what make run's sink keeps; the console's Sent tab lists it
    sent.add({"channel": "email", "to": ["chen.wei@example.cn"], "subject": "您的投诉已受理", "body": "我们已收到您的投诉"})
    OUTPUT.mkdir(parents=True, exist_ok=True)
    # the default demo users: agent = li-na of team transport
    async with gateway_before_real_complaints(database_factory, gateway_db, dev_sent_store=str(sent.path)) as (app, settings, env):
        async with served_on_loopback(app) as url, httpx.AsyncClient(base_url=url) as client, async_playwright() as p:
            admin = auth(settings, "admin", "admin-1")
            customer = auth(settings, "customer", "portal-x1", customer_id="X1")
            filed = ok(
                await client.post(
                    "/api/v1/complaints", headers=customer, json={"category": "delay", "description": "两箱货晚到三天", "channel": "web"}
                ),
                201,
            )
            assert filed["status"] == "new"  # nobody in team transport yet: queued
            ok(await client.put("/api/v1/teams/transport", headers=admin, json={"calendar": ALWAYS_OPEN}))
            ok(await client.put("/api/v1/agents/li-na", headers=admin, json={"team_id": "transport", "shifts": ALL_WEEK}))

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
                await page.click(".queue-tab[data-queue='team']")
                item = page.locator(f"#queue-list li[data-id='{filed['id']}']")
                await item.click()
                panel = page.locator("#complaint-panel")
                await expect(page.locator("#complaint-number")).to_have_text(filed["number"])

                async def step(action: str, status: str, text: str | None = None) -> None:
                    if text is not None:
                        await page.fill("#action-text", text)
                    await page.click(f"#act-{action}")
                    await expect(panel).to_have_attribute("data-status", status)

                await step("claim", "assigned")
                await page.click(".queue-tab[data-queue='mine']")
                await expect(page.locator(f"#queue-list li[data-id='{filed['id']}']")).to_be_visible()
                await step("reply", "in_progress", "我们正在联系司机")
                await step("note", "in_progress", "driver called back")
                await step("waiting", "waiting_on_customer", "请提供照片")
                await expect(page.locator("#sla-clock")).to_have_text("SLA 计时暂停")  # the clock is paused
                await expect(page.locator("#complaint-facts")).to_contain_text("延误")  # the category in the reader's language
                await page.screenshot(path=str(OUTPUT / "workspace-zh-CN.png"), full_page=True)
                ok(await client.post(f"/api/v1/complaints/{filed['id']}/customer-messages", headers=customer, json={"body": "照片已上传"}))
                await step("resolve", "resolved", "redelivered")
                await page.click("#lang-toggle")
                await expect(page.locator("#act-resolve")).to_have_text("Resolve")
                await page.screenshot(path=str(OUTPUT / "workspace-en.png"), full_page=True)
                await step("close", "closed", "customer confirmed")
                await page.click(".queue-tab[data-queue='mine']")
                await expect(page.locator(f"#queue-list li[data-id='{filed['id']}']")).to_have_count(0)  # closed: off the queue
                kinds = await page.locator("#timeline [data-kind]").evaluate_all("nodes => nodes.map(n => n.dataset.kind)")
                assert {"reply", "note", "customer_message", "resolved", "closed"} <= set(kinds)
                await expect(page.locator("#timeline")).to_contain_text("Internal note")  # the entry kinds in English now
                await page.click("#tab-sent")
                await expect(page.locator("#sent-table .sent-item")).to_contain_text("您的投诉已受理")
                await expect(page.locator("#sent-table .sent-item")).to_contain_text("Email")
                assert not errors, errors
                await context.close()
            finally:
                await browser.close()
            final = ok(await client.get(f"/api/v1/complaints/{filed['id']}", headers=admin))
            assert (final["status"], final["agent_id"], final["outcome"]) == ("closed", "li-na", "redelivered")
