"""The console's "My accounts" tab in real headless Chromium, behind the real customer-profile service: the lost
customer's survey call goes to the neutral demo agent (the pool), who sees it in their worklist; a survey without a
reason is refused with the service's words, the survey is recorded (the call leaves the worklist). The demo account
manager then has no call in their worklist, opens the case from the win-back cases, sees the survey, sends an offer (a
past last day is refused with the service's words), records the customer's acceptance and the customer is won back
(active again); their portfolio and their own KPI row are shown. Screenshots under TEST_OUTPUT_DIR."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

pytest.importorskip("crm_profile", reason="customer-profile service not installed")

from crm_common.db import utcnow  # noqa: E402
from gateway_support import auth, console_with_profile  # noqa: E402
from test_console_browser import OUTPUT, _chromium  # noqa: E402
from test_survey_browser import CHROMIUM_FLAGS  # noqa: E402

pytestmark = pytest.mark.browser
DEMO_MANAGER = "am-wang"  # the demo login "manager" (crm_gateway.settings)
DEMO_AGENT = "li-na"  # the demo login "agent"


async def test_account_manager_works_a_lost_customer_in_the_console(database_factory, gateway_db):
    from playwright.async_api import async_playwright

    executable = _chromium()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with console_with_profile(database_factory, gateway_db, "ambrowser") as (url, client, settings, profile), async_playwright() as p:
        admin = auth(settings, "admin", "admin-1")
        ids = {}
        for name in ("Lost Harbour Logistics", "Steady Cold Chain"):
            created = await client.post(
                "/api/v1/customers", headers=admin, json={"name": name, "account_manager": DEMO_MANAGER, "status": "active"}
            )
            assert created.status_code == 201, created.text
            ids[name] = created.json()["id"]
        lost = ids["Lost Harbour Logistics"]
        pool = await client.put("/api/v1/account-manager/win-back-call-agents", headers=admin, json={"agents": [DEMO_AGENT]})
        assert pool.status_code == 200, pool.text
        assert (
            await client.patch(f"/api/v1/customers/{lost}", headers=admin | {"If-Match": "*"}, json={"status": "lost"})
        ).status_code == 200

        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1400, "height": 1400}, locale="en")).new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)

            async def sign_in(username: str) -> None:
                await page.goto(url + "/console")
                await page.wait_for_selector(f"#login-user option[value='{username}']", state="attached")
                await page.select_option("#login-user", username)
                await page.click("#login-btn")

            await sign_in("agent")  # the neutral agent makes the call
            await page.click("#tab-accounts")
            call = page.locator(f"#am-worklist li[data-kind='win_back_call'][data-customer='{lost}']")
            await expect(call).to_contain_text("Lost Harbour Logistics")
            # due day in zh-CN (the default) format
            await expect(call.locator("strong")).to_have_text(re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日$"))
            # the item's detail from its message key (work.win_back_call) in zh-CN, the case's reason from its own key
            await expect(call).to_contain_text("流失客户回访：了解流失原因及挽回条件（状态被设为流失（原为 ")
            await call.click()
            await expect(page.locator("#wb-card")).to_be_visible()
            await expect(page.locator("#wb-detail")).to_contain_text("状态被设为流失（原为 ")  # winback.terminated in zh-CN
            await expect(page.locator("#wb-call-agent")).to_have_text(DEMO_AGENT)
            await expect(page.locator("#wb-manage")).to_be_hidden()  # offers and the outcome are the manager's
            await page.click("#wb-save")  # no reason ticked: the service's 422 is shown
            await expect(page.locator("#wb-error")).to_contain_text("reasons")
            await page.check("#wb-reason-late_delivery")
            await page.check("#wb-reason-competitor_offer")
            await page.fill("#wb-reason-text", "two late peak-season deliveries")
            await page.fill("#wb-return-if", "guaranteed capacity in November")
            await page.click("#wb-save")
            await expect(call).to_have_count(0)  # the call is done
            await expect(page.locator("#wb-survey")).to_be_hidden()
            await page.screenshot(path=str(OUTPUT / "win-back-neutral-agent.png"), full_page=True)
            await page.click("#logout-btn")

            await sign_in("manager")
            await expect(page.locator("#accounts-view")).to_be_visible()  # an account manager starts in their workspace
            await expect(page.locator("#am-portfolio tbody tr")).to_have_count(2)
            await expect(page.locator("#am-kpis tbody tr")).to_have_count(1)
            await expect(page.locator(f"#am-kpis tbody tr[data-manager='{DEMO_MANAGER}']")).to_be_visible()
            await expect(page.locator("#am-worklist li[data-kind='win_back_call']")).to_have_count(0)  # not the manager's call
            case = page.locator(f"#am-cases li[data-customer='{lost}']")
            await expect(case).to_contain_text(DEMO_AGENT)
            await case.click()
            await expect(page.locator("#wb-answers")).to_contain_text("late_delivery")
            await expect(page.locator("#wb-survey")).to_be_hidden()
            await page.fill("#wb-offer-summary", "guaranteed November capacity")
            await page.fill("#wb-offer-discount", "5")
            await page.fill("#wb-offer-until", "2020-01-31")
            await page.click("#wb-offer-send")  # a last day in the past: the service's 422 is shown
            await expect(page.locator("#wb-error")).to_contain_text("valid_until")
            await page.fill("#wb-offer-until", f"{utcnow().year + 1}-01-31")
            await page.click("#wb-offer-send")
            offer = page.locator("#wb-offers li")
            await expect(offer).to_contain_text("guaranteed November capacity (5%)")
            await offer.locator(".offer-accept").click()
            await expect(offer).to_contain_text("已接受")
            await page.screenshot(path=str(OUTPUT / "account-manager-win-back.png"), full_page=True)
            await page.click("#wb-won")
            await expect(page.locator("#wb-card")).to_be_hidden()
            assert problems == []
        finally:
            await browser.close()

        manager = auth(settings, "account_manager", DEMO_MANAGER)
        [case] = (await client.get("/api/v1/account-manager/win-back-cases", headers=manager)).json()["items"]
        assert (case["status"], case["reasons"], case["would_return_if"], case["surveyed_by"]) == (
            "won_back",
            ["late_delivery", "competitor_offer"],
            "guaranteed capacity in November",
            DEMO_AGENT,
        )
        assert [(o["summary"], o["discount_percent"], o["response"]) for o in case["offers"]] == [
            ("guaranteed November capacity", 5, "accepted")
        ]
        assert (await client.get(f"/api/v1/customers/{lost}", headers=manager)).json()["status"] == "active"
