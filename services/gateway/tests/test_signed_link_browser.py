"""Both pages behind a signed link (survey.js and satisfaction-survey.js on signed-link.js) in headless Chromium: the
gateway serves the pages, Playwright answers their API with each answer a service gives (or none at all, as when the
network is down) and the page must say what it means. The real services behind them: test_survey_browser.py and
test_satisfaction_survey_browser.py."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from crm_devbroker.testing import served_on_loopback
from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings
from test_console_browser import _chromium

pytestmark = pytest.mark.browser

EXPIRED, INVALID, FAILED = "This survey link has expired.", "This survey link is not valid.", "Sending failed; please try again later."
PAGES = {  # the ids' prefix, path, its API, what the API shows for the link, the score to pick, thanks, already answered
    "survey": (
        "survey",
        "/survey/K1",
        re.compile(r"/api/v1/survey/K1(\?|$)"),
        {"complaint_number": "K-1", "language": "en", "outcome": "redelivered", "resolved_at": None, "answered": False},
        "#score-4",
        "Thank you for your rating!",
        "You have already rated this resolution. Thank you.",
    ),
    "satisfaction": (
        "sat",
        "/satisfaction-survey/I1",
        re.compile(r"/api/v1/satisfaction-survey-links/I1(\?|$)"),
        {"campaign_name": "Q4", "language": "en", "factors": ["price"], "expires_at": "2030-01-01T00:00:00Z", "answered": False},
        "#overall-4",
        "Thank you for your answers!",
        "You have already answered this survey. Thank you.",
    ),
}
NOT_REACHED = None  # the request never gets an answer (offline, connection refused)


@pytest.mark.parametrize("which", PAGES)
async def test_each_answer_of_the_link_s_service_is_said_the_same_on_both_pages(which, gateway_db, fakes):
    from playwright.async_api import async_playwright

    ids, path, api, shown, score, thanks, answered = PAGES[which]
    answers = {"GET": 200, "POST": 200}

    async def service(route):
        status = answers[route.request.method]
        if status is NOT_REACHED:
            await route.abort("connectionrefused")
        elif status == 200:
            await route.fulfill(json=shown if route.request.method == "GET" else {})
        else:
            await route.fulfill(status=status, content_type="application/problem+json", body='{"title": "refused"}')

    app = create_app(GatewaySettings(database_url=gateway_db), start_background=False, transports=fakes.transports())
    try:
        async with served_on_loopback(app) as url, async_playwright() as p:
            browser = await p.chromium.launch(executable_path=_chromium(), args=["--headless", "--no-sandbox", "--disable-gpu"])
            context = await browser.new_context(locale="en-US")
            page = await context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            await page.route(api, service)
            message, form = page.locator(f"#{ids}-message"), page.locator(f"#{ids}-form")

            for status, said in ((410, EXPIRED), (403, INVALID), (404, INVALID), (422, INVALID), (503, FAILED), (NOT_REACHED, FAILED)):
                answers["GET"] = status
                await page.goto(f"{url}{path}?token=1.x&lang=en")
                await expect(message).to_have_text(said)
                await expect(form).to_be_hidden()

            answers["GET"] = 200
            for status, said in ((200, thanks), (409, answered), (410, EXPIRED), (422, INVALID), (NOT_REACHED, FAILED)):
                answers["POST"] = status
                await page.goto(f"{url}{path}?token=1.x&lang=en")
                await page.check(score)
                await page.click(f"#{ids}-submit")
                await expect(message).to_have_text(said)
                await expect(form).to_be_hidden()
            assert problems == []
            await browser.close()
    finally:
        await app.state.gateway.aclose()
        await app.state.runtime.db.dispose()
