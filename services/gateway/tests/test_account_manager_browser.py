"""The console's "My accounts" tab in real headless Chromium, behind the real customer-profile service: the demo
account manager signs in, sees their worklist with a lost customer's survey call, a survey without a reason is refused
with the service's words, the survey is recorded (the call leaves the worklist) and the customer is won back (active
again); their portfolio and their own KPI row are shown. Screenshot under TEST_OUTPUT_DIR."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from playwright.async_api import expect

pytest.importorskip("crm_profile", reason="customer-profile service not installed")

from crm_common.migrations import upgrade  # noqa: E402
from crm_devbroker.testing import served_on_loopback  # noqa: E402
from crm_gateway.main import create_app  # noqa: E402
from crm_gateway.settings import GatewaySettings  # noqa: E402
from gateway_support import FakeUpstreams, auth  # noqa: E402
from test_console_browser import OUTPUT, _chromium  # noqa: E402
from test_survey_browser import CHROMIUM_FLAGS  # noqa: E402

pytestmark = pytest.mark.browser
DEMO_MANAGER = "am-wang"  # the demo login "manager" (crm_gateway.settings)


async def test_account_manager_works_a_lost_customer_in_the_console(database_factory, gateway_db):
    from playwright.async_api import async_playwright

    import crm_profile
    from crm_profile.main import create_app as profile_app
    from crm_profile.settings import ProfileSettings

    executable = _chromium()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    profile_url = await database_factory.create("sqlite", "ambrowser")
    await asyncio.to_thread(upgrade, crm_profile.ALEMBIC_INI, profile_url)
    profile = profile_app(ProfileSettings(database_url=profile_url, run_consumers=False, run_outbox_relay=False), start_background=False)
    settings = GatewaySettings(database_url=gateway_db)
    app = create_app(settings, start_background=False, transports=FakeUpstreams().transports(profile=httpx.ASGITransport(app=profile)))
    try:
        async with served_on_loopback(app) as url, httpx.AsyncClient(base_url=url) as client, async_playwright() as p:
            admin = auth(settings, "admin", "admin-1")
            ids = {}
            for name in ("Lost Harbour Logistics", "Steady Cold Chain"):
                created = await client.post(
                    "/api/v1/customers", headers=admin, json={"name": name, "account_manager": DEMO_MANAGER, "status": "active"}
                )
                assert created.status_code == 201, created.text
                ids[name] = created.json()["id"]
            lost = ids["Lost Harbour Logistics"]
            assert (
                await client.patch(f"/api/v1/customers/{lost}", headers=admin | {"If-Match": "*"}, json={"status": "lost"})
            ).status_code == 200

            browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                page = await (await browser.new_context(viewport={"width": 1400, "height": 1200}, locale="en")).new_page()
                problems: list[str] = []
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
                await page.goto(url + "/console")
                await page.wait_for_selector("#login-user option[value='manager']", state="attached")
                await page.select_option("#login-user", "manager")
                await page.click("#login-btn")

                await expect(page.locator("#accounts-view")).to_be_visible()  # an account manager starts in their workspace
                call = page.locator(f"#am-worklist li[data-kind='win_back_call'][data-customer='{lost}']")
                await expect(call).to_contain_text("Lost Harbour Logistics")
                # due day in zh-CN (the default) format
                await expect(call.locator("strong")).to_have_text(re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日$"))
                await expect(page.locator("#am-portfolio tbody tr")).to_have_count(2)
                await expect(page.locator("#am-kpis tbody tr")).to_have_count(1)
                await expect(page.locator(f"#am-kpis tbody tr[data-manager='{DEMO_MANAGER}']")).to_be_visible()

                await call.click()
                await expect(page.locator("#wb-card")).to_be_visible()
                await page.click("#wb-save")  # no reason ticked: the service's 422 is shown
                await expect(page.locator("#wb-error")).to_contain_text("reasons")
                await page.check("#wb-reason-late_delivery")
                await page.check("#wb-reason-competitor_offer")
                await page.fill("#wb-reason-text", "two late peak-season deliveries")
                await page.fill("#wb-return-if", "guaranteed capacity in November")
                await page.click("#wb-save")
                await expect(call).to_have_count(0)  # the call is done
                await page.screenshot(path=str(OUTPUT / "account-manager-win-back.png"), full_page=True)
                await page.click("#wb-won")
                await expect(page.locator("#wb-card")).to_be_hidden()
                assert problems == []
            finally:
                await browser.close()

            manager = auth(settings, "account_manager", DEMO_MANAGER)
            [case] = (await client.get("/api/v1/account-manager/win-back-cases", headers=manager)).json()["items"]
            assert (case["status"], case["reasons"], case["would_return_if"]) == (
                "won_back",
                ["late_delivery", "competitor_offer"],
                "guaranteed capacity in November",
            )
            assert (await client.get(f"/api/v1/customers/{lost}", headers=manager)).json()["status"] == "active"
    finally:
        await app.state.gateway.aclose()
        await app.state.runtime.db.dispose()
        await profile.state.runtime.db.dispose()
