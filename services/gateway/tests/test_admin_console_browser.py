"""The console's admin tab in real headless Chromium, behind the real complaints service: the admin edits a team's
business calendar, adds an agent with shifts and changes a routing rule; the setup API then holds what was typed
and the next complaint follows the edited rule. Screenshots in zh-CN and en under TEST_OUTPUT_DIR."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from playwright.async_api import expect

pytest.importorskip("crm_complaints", reason="complaints service not installed")
complaints_support = pytest.importorskip("complaints_support", reason="complaints test helpers not on the path")

from crm_devbroker.testing import served_on_loopback  # noqa: E402
from gateway_support import auth  # noqa: E402
from test_complaint_workflow import ALL_WEEK, ALWAYS_OPEN, gateway_before_real_complaints, ok  # noqa: E402
from test_console_browser import OUTPUT, _chromium  # noqa: E402
from test_survey_browser import CHROMIUM_FLAGS  # noqa: E402

pytestmark = pytest.mark.browser


def _mainland_2026():
    from crm_complaints.setup import holidays

    found = holidays.mainland_china(2026)
    return SimpleNamespace(holidays=[d.isoformat() for d in found.holidays], workdays=[d.isoformat() for d in found.workdays])


CN_2026 = _mainland_2026()


async def test_admin_edits_a_calendar_an_agent_and_a_routing_rule_in_the_console(database_factory, gateway_db):
    from playwright.async_api import async_playwright

    from crm_complaints.setup.holidays import covered_years

    executable = _chromium()
    last_covered = covered_years()[1]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with gateway_before_real_complaints(database_factory, gateway_db) as (app, settings, env):
        async with served_on_loopback(app) as url, httpx.AsyncClient(base_url=url) as client, async_playwright() as p:
            admin = auth(settings, "admin", "admin-1")
            for team in ("transport", "claims"):
                ok(await client.put(f"/api/v1/teams/{team}", headers=admin, json={"calendar": ALWAYS_OPEN}))
            ok(await client.put("/api/v1/routing-rules", headers=admin, json=[{"category": "delay", "team": "transport", "position": 10}]))
            ok(await client.put("/api/v1/agents/li-na", headers=admin, json={"team_id": "transport", "shifts": ALL_WEEK}))

            browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                context = await browser.new_context(viewport={"width": 1400, "height": 1400}, locale="zh-CN")
                page = await context.new_page()
                problems: list[str] = []
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
                await page.goto(url + "/console")
                await page.wait_for_selector("#login-user option[value='admin']", state="attached")
                await page.select_option("#login-user", "admin")
                await page.click("#login-btn")
                await page.click("#tab-admin")

                # the transport team's calendar: a holiday, a make-up working day, shorter hours, weekdays only
                await page.click("#teams-table tr[data-id='transport']")
                await expect(page.locator("#team-id")).to_have_value("transport")
                await page.fill("#team-periods", "08:30-12:00, 13:00-17:30")
                for weekday in (5, 6):
                    await page.uncheck(f"#team-wd-{weekday}")
                await page.fill("#team-holidays", "2027-10-01\n2027-10-02")
                await page.fill("#team-workdays", "2027-10-09")
                # mainland China's 2026 dates from chinesecalendar join the ones typed; a year it lacks is said plainly
                await page.fill("#team-holiday-year", str(last_covered + 1))
                await page.click("#team-prefill")
                await expect(page.locator("#team-error")).to_contain_text(f"尚无 {last_covered + 1} 年的国务院放假安排")  # zh-CN
                await page.fill("#team-holiday-year", "2026")
                await page.click("#team-prefill")
                await expect(page.locator("#team-workdays")).to_have_value("\n".join(CN_2026.workdays + ["2027-10-09"]))
                await page.click("#team-save")
                await expect(page.locator("#teams-table tr[data-id='transport'] td").nth(6)).to_have_text(str(len(CN_2026.holidays) + 2))
                # a bad time is refused with the service's words, nothing stored
                await page.click("#teams-table tr[data-id='transport']")
                await page.fill("#team-periods", "12:75-13:00")
                await page.click("#team-save")
                await expect(page.locator("#team-error")).to_contain_text("12:75")
                await page.click("#team-cancel")

                # a new agent of team claims, Monday to Wednesday 08:00-20:00
                await page.click("#agent-new")
                await page.fill("#agent-id", "zhao-lei")
                await page.fill("#agent-name", "赵磊")
                await page.select_option("#agent-team", "claims")
                for weekday in (3, 4):
                    await page.uncheck(f"#agent-wd-{weekday}")
                await page.fill("#agent-start", "08:00")
                await page.fill("#agent-end", "20:00")
                await page.fill("#agent-capacity", "5")
                await page.check("#agent-skills .agent-skill[value='damage']")
                await page.check("#agent-skills .agent-skill[value='loss']")
                await page.fill("#agent-languages", "zh-CN, en")
                await page.click("#agent-save")
                await expect(page.locator("#agents-table tr[data-id='zhao-lei']")).to_contain_text("赵磊")
                # an agent on shift around the clock (00:00-24:00) keeps those hours when only the capacity changes
                await page.click("#agents-table tr[data-id='li-na']")
                await expect(page.locator("#agent-end")).to_have_value("24:00")
                await page.fill("#agent-capacity", "2")
                await page.click("#agent-save")
                await expect(page.locator("#agents-table tr[data-id='li-na']")).to_contain_text("0 / 2")
                # a language that is no tag is refused, naming the field
                await page.click("#agents-table tr[data-id='li-na']")
                await page.fill("#agent-languages", "中文")
                await page.click("#agent-save")
                await expect(page.locator("#agent-error")).to_contain_text("languages.0")
                await page.click("#agent-cancel")

                # the delay rule now sends East's delays to claims
                row = page.locator("#rules-table .rule-row").first
                await row.locator(".rule-name").fill("华东延误归理赔")
                await row.locator(".rule-region").fill("East")
                await row.locator(".rule-team").select_option("claims")
                await page.click("#rules-save")
                await expect(page.locator("#toast")).to_have_text("已保存")
                await page.screenshot(path=str(OUTPUT / "admin-zh-CN.png"), full_page=True)
                await page.click("#lang-toggle")
                await expect(page.locator("#rules-save")).to_have_text("Save rules")
                await page.screenshot(path=str(OUTPUT / "admin-en.png"), full_page=True)

                # the next East delay follows the edited rule, and the complaint says which rule routed it
                customer = auth(settings, "customer", "portal-x1", customer_id="X1")
                east = ok(
                    await client.post(
                        "/api/v1/complaints",
                        headers=customer,
                        json={"category": "delay", "description": "晚到", "channel": "web", "region": "East"},
                    ),
                    201,
                )
                await page.click("#tab-callcenter")
                await page.fill("#search-input", east["number"])
                await page.click("#search-btn")
                await page.click(f"#result-complaints li[data-id='{east['id']}']")
                await expect(page.locator("#complaint-facts .rule")).to_contain_text("华东延误归理赔 → claims")
                await expect(page.locator("#timeline")).to_contain_text(
                    "Waiting in the queue of team claims (nobody on shift), routed by rule 华东延误归理赔 → claims"
                )
                await page.screenshot(path=str(OUTPUT / "admin-rule-on-complaint-en.png"), full_page=True)
                assert not problems, problems
                await context.close()
            finally:
                await browser.close()

            transport = ok(await client.get("/api/v1/teams/transport", headers=admin))
            assert transport["calendar"]["periods"] == [["08:30", "12:00"], ["13:00", "17:30"]]
            assert transport["calendar"]["weekdays"] == [0, 1, 2, 3, 4]
            assert (transport["calendar"]["holidays"], transport["calendar"]["workdays"]) == (
                CN_2026.holidays + ["2027-10-01", "2027-10-02"],
                CN_2026.workdays + ["2027-10-09"],
            )
            agent = ok(await client.get("/api/v1/agents/zhao-lei", headers=admin))
            assert (agent["team_id"], agent["name"]) == ("claims", "赵磊")
            assert agent["shifts"] == [{"weekday": d, "start": "08:00", "end": "20:00"} for d in (0, 1, 2)]
            assert (agent["capacity"], agent["skills"], agent["languages"]) == (5, ["damage", "loss"], ["zh-CN", "en"])
            li_na = ok(await client.get("/api/v1/agents/li-na", headers=admin))
            assert (li_na["capacity"], li_na["shifts"]) == (2, [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)])
            assert ok(await client.get("/api/v1/routing-rules", headers=admin)) == [
                {"category": "delay", "region": "East", "service_type": None, "team": "claims", "position": 10, "name": "华东延误归理赔"}
            ]
            west = ok(
                await client.post(
                    "/api/v1/complaints",
                    headers=customer,
                    json={"category": "delay", "description": "晚到", "channel": "web", "region": "West"},
                ),
                201,
            )
            assert ok(await client.get(f"/api/v1/complaints/{east['id']}", headers=admin))["team_id"] == "claims"
            assert ok(await client.get(f"/api/v1/complaints/{west['id']}", headers=admin))["team_id"] == "customer_service"
