"""The console in real headless Chromium (Playwright for Python), against the gateway served by
uvicorn in-process with fake upstream services. Leaves screenshots under TEST_OUTPUT_DIR."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import expect

from crm_devbroker.testing import served_on_loopback
from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings
from gateway_support import dashboard_events, feed_read_models, shipment_events

# one Chromium for the module: tests and their async fixtures share the module's event loop
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(os.environ.get("TEST_OUTPUT_DIR", "test-output"))


def _chromium() -> str:
    if not os.path.exists(CHROMIUM) and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, timeout=900)
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} and `apt-get install -y chromium` did not provide one")
    return CHROMIUM


@pytest_asyncio.fixture(loop_scope="module")
async def console_url(gateway_db, fakes):
    settings = GatewaySettings(database_url=gateway_db)
    app = create_app(settings, start_background=False, transports=fakes.transports())
    await feed_read_models(app.state.runtime, dashboard_events() + shipment_events("C2"))
    async with served_on_loopback(app) as url:
        yield url
    await app.state.gateway.aclose()
    await app.state.runtime.db.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    from playwright.async_api import async_playwright

    executable = _chromium()
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert not errors, errors


async def _login(page, url: str, user: str) -> None:
    await page.goto(url + "/console")
    await page.wait_for_selector(f"#login-user option[value='{user}']", state="attached")
    await page.select_option("#login-user", user)
    await page.click("#login-btn")
    await page.wait_for_selector("#callcenter-view", state="visible")


async def test_call_center_find_customer_by_phone_open_complaint_see_timeline(console_url, page):
    await _login(page, console_url, "agent")
    assert "agent" in await page.inner_text("#whoami")
    assert await page.inner_text("#search-btn") == "查询"  # zh-CN by default
    await page.click("#lang-toggle")
    assert await page.inner_text("#search-btn") == "Search"
    await page.fill("#search-input", "13900000002")
    await page.click("#search-btn")
    await page.wait_for_selector(".result-customer[data-id='C2']")
    await page.wait_for_selector("#c360:not([hidden])")
    assert await page.inner_text("#c360-name") == "Beta Electronics"
    kpis = await page.inner_text("#c360-kpis")
    assert "Ordinary" in kpis and "Loyal" in kpis and "88" in kpis  # data values through the message tables
    assert await page.locator("#c360-shipments tbody tr").count() == 3
    assert "SFC21" in await page.inner_text("#c360-shipments")

    await page.click(".c360-complaint[data-id='K2']")
    await page.wait_for_selector("#timeline li.timeline-entry")
    assert await page.inner_text("#complaint-number") == "CMP-2026-0002"
    timeline = await page.inner_text("#timeline")
    assert "Assigned to the delay team" in timeline and "Filed" in timeline  # entry kinds in the reader's language
    sla = await page.inner_text("#sla-clock")
    assert "Resolution" in sla
    OUTPUT.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(OUTPUT / "console-call-center.png"), full_page=True)

    # file a complaint for the caller; the console then opens it
    await page.click("#new-complaint-btn")
    assert await page.input_value("#f-customer") == "C2"
    await page.select_option("#f-category", "damage")
    await page.fill("#f-tracking", "SF777")
    await page.fill("#f-description", "Carton crushed on arrival")
    await page.click("#f-submit")
    await expect(page.locator("#complaint-number")).to_have_text("CMP-2026-0004")  # no wait_for_function: the CSP forbids eval
    assert "Carton crushed" in await page.inner_text("#complaint-description")

    # search by complaint number and by tracking number
    await page.fill("#search-input", "CMP-2026-0001")
    await page.click("#search-btn")
    await page.wait_for_selector(".result-complaint[data-id='K1']")
    await page.fill("#search-input", "SF200")
    await page.click("#search-btn")
    await page.wait_for_selector(".result-complaint[data-id='K2']")


async def test_dashboard_draws_charts_and_switches_language(console_url, page):
    await _login(page, console_url, "admin")
    await page.click("#tab-dashboard")
    await page.wait_for_selector("#chart-pareto svg rect.bar")
    assert await page.locator("#chart-pareto rect.bar").count() == 3  # classes A, B, C (D is empty)
    assert "80%" in await page.inner_text("#chart-pareto")
    assert await page.locator("#chart-rfm rect.cell").count() == 3
    assert await page.locator("#chart-tiers rect.bar").count() == 2  # ordinary -> key_account, key_account -> at_risk
    tiers_text = await page.inner_text("#chart-tiers")
    assert "普通客户: 2" in tiers_text and "ordinary" not in tiers_text  # tier counts from /reports/tiers, in zh-CN
    assert await page.locator("#chart-value-matrix rect.bar").count() == 4  # one bar per cell of current x potential value
    matrix_text = await page.inner_text("#chart-value-matrix")
    assert "重要" in matrix_text and "70%" in matrix_text  # zh-CN by default; the cell's share of revenue
    assert await page.locator("#chart-abc rect.bar").count() == 7  # three-way A, B, C and four-way A..D, from /reports/abc
    abc_text = await page.inner_text("#chart-abc")
    assert "三分法 A" in abc_text and "四分法 D" in abc_text and "50%" in abc_text  # deciles' revenue shares in the caption
    assert await page.locator("#chart-credit-churn rect.bar").count() == 7  # grades A..D and risks low, medium, high
    credit_text = await page.inner_text("#chart-credit-churn")
    assert "信用 A" in credit_text and "流失风险: 高" in credit_text and "2 恶化" in credit_text
    # service levels, fetched apart: the on-time trend's eleven measured months (the month without records is left
    # out, not drawn as 0%), the worst customers of the last closed month lowest first, and the CSV as a download
    await page.wait_for_selector("#chart-service-levels circle.point")
    assert await page.locator("#chart-service-levels circle.point").count() == 11
    worst = await page.locator("#service-levels-worst tbody tr").all_inner_texts()
    assert len(worst) == 3 and worst[0].split("\t")[:3] == ["C1", "大客户", "80%"]
    async with page.expect_download() as download:
        await page.click("#service-levels-csv")
    assert (await download.value).suggested_filename.startswith("service-levels-")
    assert "C3,ordinary" in Path(await (await download.value).path()).read_text()
    assert await page.locator("#chart-complaints rect.bar").count() == 2
    assert "76%" in await page.inner_text("#chart-complaints")  # resolution SLA compliance
    assert await page.locator("#chart-notifications rect.bar").count() == 4
    assert await page.locator("#chart-complaint-trend circle.point").count() == 6  # 2026-10 and -11, four months before at 0
    await page.wait_for_selector("#chart-model img.model-chart")  # the scoring service's model chart, fetched with the token
    await page.evaluate("localStorage.setItem('crm.lang', 'en')")
    before = await page.inner_text("#tab-dashboard")
    await page.click("#lang-toggle")
    after = await page.inner_text("#tab-dashboard")
    assert {before, after} == {"Dashboard", "管理看板"}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(OUTPUT / "console-dashboard.png"), full_page=True)


async def test_dashboard_filter_bar_reloads_the_report_cards_and_shows_a_rejected_period(console_url, fakes, page):
    await _login(page, console_url, "admin")
    await page.click("#tab-dashboard")
    await page.wait_for_selector("#chart-rfm rect.cell")
    assert await page.locator("#chart-rfm rect.cell").count() == 3
    assert "普通客户: 2" in await page.inner_text("#chart-tiers")
    await page.select_option("#filter-tier", "key_account")
    await page.fill("#filter-region", "华东")
    async with page.expect_request(lambda r: "/api/v1/dashboard?" in r.url) as dashboard_request:
        await page.click("#filter-apply")
    assert "tier=key_account" in (await dashboard_request.value).url
    await expect(page.locator("#chart-rfm rect.cell")).to_have_count(1)
    scoring = fakes.recorders["scoring"]
    paths = ("/reports/pareto", "/reports/rfm", "/reports/tiers", "/reports/matrices", "/reports/abc", "/reports/credit-churn")
    for path in (*paths, "/reports/service-levels"):
        query = scoring.last(path)[2]
        assert query["tier"] == "key_account" and query["region"] == "华东", (path, query)
    # the fake scoring's reports keep only the key account: the cards are drawn again from them
    await expect(page.locator("#chart-rfm rect.cell")).to_have_count(1)
    await expect(page.locator("#chart-pareto rect.bar")).to_have_count(1)  # the key account's class A alone
    tiers_text = await page.inner_text("#chart-tiers")  # the caption's counts; the movements are the gateway's, unfiltered
    assert "大客户: 1" in tiers_text and "普通客户: 2" not in tiers_text
    assert "信用 A" in await page.inner_text("#chart-credit-churn")
    await expect(page.locator("#service-levels-worst tbody tr")).to_have_count(3)
    # a period ending before it starts: the service's 422 under the bar, the cards still there
    await page.fill("#filter-period_start", "2026-06-30")
    await page.fill("#filter-period_end", "2026-01-01")
    await page.click("#filter-apply")
    await expect(page.locator("#dash-filter-error")).to_contain_text("period_start is after period_end.")
    assert await page.locator("#chart-rfm rect.cell").count() == 1
    await page.click("#filter-clear")
    await expect(page.locator("#chart-rfm rect.cell")).to_have_count(3)
    await expect(page.locator("#chart-pareto rect.bar")).to_have_count(3)
    assert await page.inner_text("#dash-filter-error") == ""


async def test_dashboard_charts_have_readable_axes_and_whole_labels_in_both_languages(console_url, page):
    """The complaint trend has a count axis with round ticks and a month axis in the reader's language; the tier
    movements are labelled whole, inside the chart, at the console's two layouts (two chart columns, one below 900 px)."""
    await _login(page, console_url, "admin")
    await page.click("#tab-dashboard")
    trend, tiers = page.locator("#chart-complaint-trend"), page.locator("#chart-tiers")
    expected = {
        "zh-CN": (
            ["2026年6月", "2026年7月", "2026年8月", "2026年9月", "2026年10月", "2026年11月"],
            {"普通客户 → 大客户", "大客户 → 风险客户"},
        ),
        "en": (
            ["Jun 2026", "Jul 2026", "Aug 2026", "Sep 2026", "Oct 2026", "Nov 2026"],
            {"Ordinary → Key account", "Key account → At risk"},
        ),
    }
    suppressed = {  # notifications' reason keys through the message tables; a reason stored without a key as written
        "zh-CN": "已屏蔽: 每日发送上限 2 · no address for channel email 1",
        "en": "Suppressed: Daily frequency cap 2 · no address for channel email 1",
    }
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for width in (1400, 880):
        await page.set_viewport_size({"width": width, "height": 1000})
        for lang in ("zh-CN", "en"):
            if await page.get_attribute("html", "lang") != lang:
                await page.click("#lang-toggle")
            await expect(page.locator("html")).to_have_attribute("lang", lang)
            months, moves = expected[lang]
            await expect(trend.locator("text.tick-y")).to_have_text(["0", "5", "10"])  # 7 and 10 complaints: 0, 5, 10
            ticks = await trend.locator("text.tick-x").all_text_contents()
            assert ticks and set(ticks) <= set(months) and ticks[-1] == months[-1], ticks  # every label that fits, the latest always
            await expect(trend.locator("circle.point")).to_have_count(6)
            labels = tiers.locator("text.bar-label")
            shown = await labels.evaluate_all("nodes => nodes.map((n) => n.firstChild.nodeValue)")  # the text drawn, not its <title>
            assert set(shown) == moves, shown  # whole, not cut with …
            left_edges = await labels.evaluate_all("nodes => nodes.map((n) => n.getBBox().x)")
            assert min(left_edges) >= 0, left_edges  # inside the chart, not cut at its left edge
            await expect(page.locator("#chart-notifications .caption")).to_have_text(suppressed[lang])
            await page.screenshot(path=str(OUTPUT / f"dashboard-charts-{lang}-{width}.png"), full_page=True)


async def test_data_values_dates_and_numbers_follow_the_chosen_language(console_url, page):
    await _login(page, console_url, "agent")
    await page.click("#lang-toggle")  # en first: the raw values the services send are shown as English words
    await page.fill("#search-input", "13900000002")
    await page.click("#search-btn")
    await page.wait_for_selector("#c360:not([hidden])")
    en_kpis = await page.inner_text("#c360-kpis")
    assert "Ordinary" in en_kpis and "Loyal" in en_kpis and "Low" in en_kpis
    await page.click(".c360-complaint[data-id='K2']")
    await page.wait_for_selector("#timeline li.timeline-entry")
    en_date = await page.inner_text("#timeline time >> nth=0")
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}\s?[AP]M", en_date), en_date

    await page.click("#lang-toggle")  # zh-CN: the same page re-rendered
    await expect(page.locator("#search-btn")).to_have_text("查询")
    zh_kpis = await page.inner_text("#c360-kpis")
    for raw in ("ordinary", "loyal", "low"):
        assert raw not in zh_kpis, zh_kpis
    assert "普通客户" in zh_kpis and "忠诚客户" in zh_kpis
    facts = await page.inner_text("#complaint-facts")
    assert "call_center" not in facts and "呼叫中心" in facts and "普通" in facts  # channel and priority
    zh_date = await page.inner_text("#timeline time >> nth=0")
    assert re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}", zh_date), zh_date
    assert await page.get_attribute("#timeline time >> nth=0", "datetime")  # machine-readable instant kept beside the text
    OUTPUT.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(OUTPUT / "console-call-center-zh-CN.png"), full_page=True)


async def test_console_is_not_for_agents_dashboard(console_url, page):
    await _login(page, console_url, "agent")
    assert await page.locator("#tab-dashboard").is_hidden()


async def test_call_center_against_the_real_services(database_factory, page):
    for module in ("crm_profile", "crm_complaints", "crm_scoring"):
        pytest.importorskip(module, reason=f"{module} not installed")
    from gateway_support import role_headers
    from real_stack import build_real_stack, register_in_complaints

    stack = await build_real_stack(database_factory)
    try:
        async with served_on_loopback(stack.app) as url:
            admin, agent = role_headers(stack.settings, "admin"), role_headers(stack.settings, "agent")
            created = await stack.client.post(
                "/api/v1/customers",
                headers=admin,
                json={"name": "Hangzhou Fresh Logistics", "industry": "food", "contact": {"name": "Mr Zhao", "phone": "+8613700137003"}},
            )
            customer_id = created.json()["id"]
            await register_in_complaints(stack.complaints_db, customer_id, "+8613700137003")
            filed = await stack.client.post(
                "/api/v1/complaints",
                headers=agent,
                json={
                    "customer_id": customer_id,
                    "category": "delay",
                    "description": "Cold-chain pallet arrived 6 hours late",
                    "channel": "call_center",
                    "tracking_numbers": ["SF7000001"],
                },
            )
            number = filed.json()["number"]

            await _login(page, url, "agent")
            await page.click("#lang-toggle")
            await page.fill("#search-input", "13700137003")
            await page.click("#search-btn")
            await page.wait_for_selector(f".result-customer[data-id='{customer_id}']")
            await expect(page.locator("#c360-name")).to_have_text("Hangzhou Fresh Logistics")
            await page.click(f".c360-complaint[data-id='{filed.json()['id']}']")
            await page.wait_for_selector("#timeline li.timeline-entry")
            assert await page.inner_text("#complaint-number") == number
            assert (await page.inner_text("#sla-clock")).startswith(("Resolution", "First response"))
            OUTPUT.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(OUTPUT / "console-call-center-real-services.png"), full_page=True)
    finally:
        await stack.close()
