"""The HTTP API in-process (ASGI): scores with explanations and history, lists with cursors, reports, recompute."""

from collections import Counter

import httpx
import pytest
import pytest_asyncio

from crm_devbroker.testing import edge_auth
from crm_scoring.main import create_app
from scoring_support import AS_OF, clock, feed, history, processor, scoring_db, settings_for


@pytest_asyncio.fixture
async def scored_app(database_factory):
    db = await scoring_db(database_factory, "sqlite", "api")
    proc, _ = processor(db)
    await feed(proc, history(seed=9, n_customers=40), batch_sizes=(100,))
    await db.dispose()
    app = create_app(settings_for(db.url), start_background=False, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoring", auth=edge_auth(app)) as client:
        yield client
    await app.state.runtime.stop()


async def test_recompute_then_scores_lists_and_reports(scored_app):
    client = scored_app
    response = await client.post("/admin/recompute")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customers"] == 38 and body["as_of"] == AS_OF.date().isoformat()
    assert set(body["model"]["bgnbd"]) == {"r", "alpha", "a", "b"}

    page = (await client.get("/scores", params={"limit": 10})).json()
    assert len(page["items"]) == 10 and page["next_cursor"]
    seen = [i["customer_id"] for i in page["items"]]
    while page["next_cursor"]:
        page = (await client.get("/scores", params={"limit": 10, "cursor": page["next_cursor"]})).json()
        seen += [i["customer_id"] for i in page["items"]]
    assert len(seen) == 38 and seen == sorted(set(seen))

    a_class = (await client.get("/scores", params={"abc_class": "A"})).json()["items"]
    assert a_class and all(i["abc_class"] == "A" and i["tier"] == "key_account" for i in a_class)
    risky = (await client.get("/scores", params={"risk": "high"})).json()["items"]
    assert all(i["churn_risk"] == "high" for i in risky)

    one = (await client.get(f"/scores/{a_class[0]['customer_id']}")).json()
    for key in (
        "current_value",
        "potential_value",
        "loyalty",
        "satisfaction",
        "credit_grade",
        "churn_risk",
        "rfm",
        "abc_class",
        "tier",
        "lifetime_value",
    ):
        assert key in one["explanations"], key
    assert one["explanations"]["abc_class"]["value"] == "A"
    assert one["explanations"]["rfm"]["explanation"].startswith("R")
    assert one["history"] and "scores" in one["history"][0]

    missing = await client.get("/scores/nobody")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    bad = await client.get("/scores", params={"cursor": "%%%"})
    assert bad.status_code == 422

    pareto = (await client.get("/reports/pareto")).json()
    assert pareto["customers"] == 38
    assert sum(c["customers"] for c in pareto["classes"]) == 38
    assert sum(c["contribution_share"] for c in pareto["classes"]) == pytest.approx(1.0, abs=1e-5)
    svg = await client.get("/reports/pareto.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    png = await client.get("/reports/pareto.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"

    # the dashboard's counts, over the whole base, agree with the stored scores
    items = (await client.get("/scores", params={"limit": 500})).json()["items"]
    rfm = (await client.get("/reports/rfm")).json()
    cells = Counter((i["rfm_r"], i["rfm_f"]) for i in items if i["rfm_r"] is not None)
    assert {(c["r"], c["f"]): c["count"] for c in rfm["cells"]} == cells and rfm["customers"] == sum(cells.values())
    assert {s["segment"]: s["count"] for s in rfm["segments"]} == Counter(i["rfm_segment"] for i in items if i["rfm_segment"])
    tiers = (await client.get("/reports/tiers")).json()
    assert {t["tier"]: t["count"] for t in tiers["tiers"]} == Counter(i["tier"] for i in items) and tiers["customers"] == 38

    model = await client.get("/reports/model", params={"calibration_end": "2025-12-31"})
    assert model.status_code == 200, model.text
    report = model.json()
    assert set(report["parameters"]) == {"r", "alpha", "a", "b"} and report["log_likelihood"] < 0
    holdout = report["holdout"]
    assert sum(g["customers"] for g in holdout["by_calibration_orders"]) == report["customers"]
    assert holdout["actual_total"] > 0 and holdout["predicted_total"] > 0
    weekly = report["weekly_cumulative"]
    assert [p["actual"] for p in weekly] == sorted(p["actual"] for p in weekly) and weekly[-1]["holdout"] and not weekly[0]["holdout"]
    model_svg = await client.get("/reports/model.svg", params={"calibration_end": "2025-12-31"})
    assert (
        model_svg.status_code == 200
        and model_svg.headers["content-type"].startswith("image/svg+xml")
        and b"Weekly cumulative repeat transactions" in model_svg.content
    )
    model_png = await client.get("/reports/model.png", params={"calibration_end": "2025-12-31"})
    assert model_png.status_code == 200 and model_png.content[:8] == b"\x89PNG\r\n\x1a\n"
    for path in ("/reports/model", "/reports/model.svg"):
        too_late = await client.get(path, params={"calibration_end": "2030-01-01"})
        assert too_late.status_code == 422 and too_late.headers["content-type"].startswith("application/problem+json")
