"""The customer's survey page in real headless Chromium: the gateway (served by uvicorn) in front of the real
complaints service; the link comes from the ComplaintResolved event the notifications service turns into the
resolution message. Screenshots in zh-CN and en under TEST_OUTPUT_DIR."""

from __future__ import annotations

import re
import urllib.parse

import httpx
import pytest
from playwright.async_api import expect

pytest.importorskip("crm_complaints", reason="complaints service not installed")
complaints_support = pytest.importorskip("complaints_support", reason="complaints test helpers not on the path")

from crm_devbroker.testing import served_on_loopback  # noqa: E402
from gateway_support import auth  # noqa: E402
from test_complaint_workflow import ALL_WEEK, ALWAYS_OPEN, gateway_before_real_complaints, ok, resolved_events  # noqa: E402
from test_console_browser import OUTPUT, _chromium  # noqa: E402

pytestmark = pytest.mark.browser
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def test_customer_answers_the_survey_page_in_chromium_in_both_languages(database_factory, gateway_db):
    from playwright.async_api import async_playwright

    executable = _chromium()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with gateway_before_real_complaints(database_factory, gateway_db) as (app, settings, env):
        async with served_on_loopback(app) as url, httpx.AsyncClient(base_url=url) as client, async_playwright() as p:
            admin = auth(settings, "admin", "admin-1")
            customer = auth(settings, "customer", "portal-x1", customer_id="X1")
            ok(await client.put("/api/v1/teams/transport", headers=admin, json={"calendar": ALWAYS_OPEN}))
            ok(await client.put("/api/v1/agents/li-na", headers=admin, json={"team_id": "transport", "shifts": ALL_WEEK}))
            links = []
            for description in ("两箱货晚到三天", "second parcel late"):
                filed = ok(
                    await client.post(
                        "/api/v1/complaints", headers=customer, json={"category": "delay", "description": description, "channel": "web"}
                    ),
                    201,
                )
                ok(await client.post(f"/api/v1/complaints/{filed['id']}/resolve", headers=admin, json={"outcome": "redelivered"}))
                link = urllib.parse.urlsplit((await resolved_events(env))[-1]["payload"]["survey_url"])
                links.append((filed, f"{url}{link.path}?{link.query}"))

            browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                page_texts = {  # the page's own texts from the console's message tables: its facts table and the scale
                    "zh-CN": ("感谢您的评价！", ["投诉单号", "解决时间", "处理结果"], "满意", r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}"),
                    "en": (
                        "Thank you for your rating!",
                        ["Complaint", "Resolved", "Outcome"],
                        "Satisfied",
                        r"[A-Z][a-z]{2} \d{1,2}, \d{4}, .*[AP]M",
                    ),
                }
                for (filed, link), (locale, lang) in zip(links, [("zh-CN", "zh-CN"), ("en-US", "en")]):
                    thanks, headings, four, resolved_at = page_texts[lang]
                    context = await browser.new_context(locale=locale, viewport={"width": 900, "height": 700})
                    page = await context.new_page()
                    problems: list[str] = []
                    page.on("pageerror", lambda exc, problems=problems: problems.append(str(exc)))
                    page.on(
                        "console", lambda m, problems=problems: problems.append(m.text) if "Content Security Policy" in m.text else None
                    )
                    await page.goto(f"{link}&lang={lang}")
                    await page.wait_for_selector("#survey-form", state="visible")
                    assert filed["number"] in await page.inner_text("#survey-intro")
                    await expect(page.locator("#survey-facts th")).to_have_text(headings)
                    await expect(page.locator("#survey-number")).to_have_text(filed["number"])
                    await expect(page.locator("#survey-outcome")).to_have_text("redelivered")  # the agent's words, as written
                    await expect(page.locator("#survey-resolved")).to_have_text(re.compile(resolved_at))
                    await expect(page.locator("#score-4-text")).to_have_text(four)
                    await page.check("#score-4")
                    await page.fill("#survey-comment", "ok")
                    await page.screenshot(path=str(OUTPUT / f"survey-{lang}.png"), full_page=True)
                    await page.click("#survey-submit")
                    await page.wait_for_selector("#survey-message:not(:empty)")  # the CSP forbids wait_for_function's eval
                    assert await page.inner_text("#survey-message") == thanks
                    await page.reload()  # single use: the page now says it was answered
                    await page.wait_for_selector("#survey-message:not(:empty)")  # the CSP forbids wait_for_function's eval
                    assert await page.is_hidden("#survey-form")
                    await page.goto(link.replace("token=", "token=9"))
                    await page.wait_for_selector("#survey-message:not(:empty)")  # the CSP forbids wait_for_function's eval
                    assert await page.is_hidden("#survey-form")
                    assert not problems, problems
                    await context.close()
            finally:
                await browser.close()
            for filed, _ in links:
                assert ok(await client.get(f"/api/v1/complaints/{filed['id']}", headers=admin))["survey_score"] == 4
