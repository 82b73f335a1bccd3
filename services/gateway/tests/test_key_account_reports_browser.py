"""Key-account monthly reports in the console's "My accounts" tab, real headless Chromium behind the real
customer-profile service: the demo account manager lists a month's reports, views one and downloads it as CSV; the
customer (signed in with its own token) first reads that it must opt in, opts in itself, then sees and downloads only
its own report; opting out hides it again. Screenshots under TEST_OUTPUT_DIR."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

pytest.importorskip("crm_profile", reason="customer-profile service not installed")

from gateway_support import auth, console_with_profile, token  # noqa: E402
from test_console_browser import OUTPUT, _chromium  # noqa: E402
from test_survey_browser import CHROMIUM_FLAGS  # noqa: E402

pytestmark = pytest.mark.browser
DEMO_MANAGER = "am-wang"
MONTH = "2025-09"


async def test_reports_listed_viewed_downloaded_and_the_customer_opts_in_itself(database_factory, gateway_db):
    from playwright.async_api import async_playwright

    executable = _chromium()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with (
        console_with_profile(database_factory, gateway_db, "karbrowser") as (url, client, settings, profile),
        async_playwright() as p,
    ):
        admin = auth(settings, "admin", "admin-1")
        ids = {}
        for name in ("Huaxin Key Electronics", "Nanhai Key Foods"):
            created = await client.post(
                "/api/v1/customers", headers=admin, json={"name": name, "account_manager": DEMO_MANAGER, "size_band": "key_account"}
            )
            assert created.status_code == 201, created.text
            ids[name] = created.json()["id"]
        huaxin = ids["Huaxin Key Electronics"]
        run = await client.post("/api/v1/account-manager/key-account-reports/runs", headers=admin, json={"month": MONTH})
        assert run.status_code == 201, run.text

        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1400}, locale="en", accept_downloads=True)
            page = await context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
            await page.goto(url + "/console")
            await page.wait_for_selector("#login-user option[value='manager']", state="attached")
            await page.select_option("#login-user", "manager")
            await page.click("#login-btn")
            await expect(page.locator("#accounts-view")).to_be_visible()
            await page.fill("#kar-month", MONTH)
            await page.click("#kar-load")
            rows = page.locator("#kar-list tbody tr")
            await expect(rows).to_have_count(2)
            row = page.locator(f"#kar-list tbody tr[data-customer='{huaxin}']")
            await expect(row).to_contain_text("Huaxin Key Electronics")
            await row.locator(".kar-view").click()
            await expect(page.locator("#kar-view")).to_contain_text("| orders | count | 0 |")
            async with page.expect_download() as info:
                await row.locator(".kar-csv").click()
            download = await info.value
            assert download.suggested_filename == f"key-account-report-{huaxin}-{MONTH}.csv"
            assert "section,measure,value" in (await download.path()).read_text()
            await page.screenshot(path=str(OUTPUT / "key-account-reports-manager.png"), full_page=True)
            await page.click("#logout-btn")

            customer_token = token(settings, "customer", "portal-huaxin", customer_id=huaxin)
            await page.click("#login-view details summary")  # the token sign-in is folded away
            await page.fill("#login-token", customer_token)
            await page.click("#token-btn")
            await page.click("#tab-accounts")
            await expect(page.locator("#kar-empty")).to_be_visible()  # not opted in: told how to read them
            await expect(page.locator("#am-portfolio-card")).to_be_hidden()
            await expect(page.locator("#kar-month-row")).to_be_hidden()
            await page.check("#kar-optin")
            await expect(rows).to_have_count(1)  # only its own
            await expect(page.locator(f"#kar-list tbody tr[data-customer='{huaxin}']")).to_be_visible()
            async with page.expect_download() as info:
                await rows.first.locator(".kar-md").click()
            assert "| orders | revenue |" in (await (await info.value).path()).read_text()
            await page.screenshot(path=str(OUTPUT / "key-account-reports-customer.png"), full_page=True)
            await page.uncheck("#kar-optin")
            await expect(rows).to_have_count(0)
            assert problems == []
        finally:
            await browser.close()

        choice = await client.get(f"/api/v1/customers/{huaxin}/key-account-report-subscription", headers=admin)
        assert choice.json()["customer_opted_in"] is False and choice.json()["changed_by"] == huaxin
