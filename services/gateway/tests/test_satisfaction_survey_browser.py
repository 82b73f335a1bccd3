"""A survey campaign's page in real headless Chromium, behind the gateway and the real customer-profile service: an
admin sends a campaign through the gateway; each contact's link (from SatisfactionSurveyInvited) opens without
signing in, in the contact's language (zh-CN, en), shows the campaign's factors, takes the answer once (the same link
again says it was answered) and an edited token is refused. Screenshots under TEST_OUTPUT_DIR."""

from __future__ import annotations

import urllib.parse
import uuid

import pytest
from playwright.async_api import expect

pytest.importorskip("crm_profile", reason="customer-profile service not installed")

from sqlalchemy import select  # noqa: E402

from crm_common.events import decode_envelope  # noqa: E402
from crm_common.outbox import outbox_table  # noqa: E402
from gateway_support import auth, console_with_profile  # noqa: E402
from test_console_browser import OUTPUT, _chromium  # noqa: E402
from test_survey_browser import CHROMIUM_FLAGS  # noqa: E402

pytestmark = pytest.mark.browser


async def test_contacts_answer_their_campaign_links_in_their_language(database_factory, gateway_db):
    from playwright.async_api import async_playwright

    executable = _chromium()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with (
        console_with_profile(database_factory, gateway_db, "satbrowser") as (url, client, settings, profile),
        async_playwright() as p,
    ):
        admin = auth(settings, "admin", "admin-1")
        region = f"Region {uuid.uuid4().hex[:6]}"
        contacts = [
            {"name": "赵敏", "email": "zhao.min@example.com", "language": "zh-CN"},
            {"name": "Ann Lee", "email": "ann.lee@example.com", "language": "en"},
        ]
        created = await client.post(
            "/api/v1/customers",
            headers=admin,
            json={"name": "Huaxin Survey Electronics", "status": "active", "region": region, "contacts": contacts},
        )
        assert created.status_code == 201, created.text
        campaign = {"name": "2026 Q4 满意度调查", "segment": {"region": [region]}, "factors": ["on_time", "damage", "price"]}
        assert (
            await client.post("/api/v1/account-manager/survey-campaigns", headers=auth(settings, "agent", "li-na"), json=campaign)
        ).status_code == 403
        sent = await client.post("/api/v1/account-manager/survey-campaigns", headers=admin, json=campaign)
        assert sent.status_code == 201 and sent.json()["invited"] == 2, sent.text
        async with profile.state.runtime.db.sessions() as session:
            bodies = (
                await session.scalars(select(outbox_table.c.body).where(outbox_table.c.event_type == "SatisfactionSurveyInvited"))
            ).all()
        invitations = {e.payload["language"]: urllib.parse.urlsplit(e.payload["survey_url"]) for e in map(decode_envelope, bodies)}

        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            answers = {
                "zh-CN": ("客户满意度调查", "感谢您的评价！", "准时送达"),
                "en": ("Customer satisfaction survey", "Thank you for your answers!", "On-time delivery"),
            }
            for language, (title, thanks, factor) in answers.items():
                link = invitations[language]
                context = await browser.new_context(locale="zh-CN", viewport={"width": 900, "height": 900})
                page = await context.new_page()
                problems: list[str] = []
                page.on("pageerror", lambda exc, problems=problems: problems.append(str(exc)))
                page.on("console", lambda m, problems=problems: problems.append(m.text) if "Content Security Policy" in m.text else None)
                await page.goto(f"{url}{link.path}?{link.query}")
                await expect(page.locator("#sat-title")).to_have_text(title)  # the contact's language, whatever the browser's
                await expect(page.locator("#sat-factors fieldset")).to_have_count(3)
                await expect(page.locator("#sat-factor-on_time legend")).to_have_text(factor)
                await page.check("#overall-4")
                await page.check("#on_time-5")
                await page.check("#price-2")
                await page.fill("#sat-comment", "价格偏高" if language == "zh-CN" else "a bit expensive")
                await page.screenshot(path=str(OUTPUT / f"satisfaction-survey-{language}.png"), full_page=True)
                await page.click("#sat-submit")
                await expect(page.locator("#sat-message")).to_have_text(thanks)
                await page.reload()
                await expect(page.locator("#sat-form")).to_be_hidden()  # single use
                edited = link.query[:-1] + ("0" if link.query[-1] != "0" else "1")
                await page.goto(f"{url}{link.path}?{edited}")
                await expect(page.locator("#sat-message")).to_contain_text("无效")  # nothing loaded: the browser's language
                assert problems == []
                await context.close()
        finally:
            await browser.close()

        listed = await client.get(f"/api/v1/account-manager/survey-campaigns/{sent.json()['id']}", headers=admin)
        assert (listed.json()["answered"], listed.json()["average_score"]) == (2, 4.0)
