"""The admin dashboard over 10,000 customers: every count it shows (Pareto classes, RFM grid and segments, tiers, the
three matrices, the ABC splits, credit grades and churn risk with their movements) equals the count computed with
pandas from the rows stored in scoring's tables. The gateway calls the real scoring app (ASGI), on both databases.
A dashboard that read a page of scores (`/scores?limit=500`, as it once did) or any other sample fails here: its
counts would add up to the sample, not to the 10,000 customers."""

from __future__ import annotations

import datetime as dt

import httpx
import pandas as pd
import pytest

pytest.importorskip("crm_scoring", reason="crm_scoring not installed")

from crm_scoring.main import create_app as scoring_app  # noqa: E402
from gateway_support import role_headers  # noqa: E402
from report_base import MATRIX_COLUMN, expected_classes, generated_base, grouped, split_counts, store  # noqa: E402
from scoring_support import scoring_db, settings_for  # noqa: E402

CUSTOMERS = 10_000
# the scoring service's today: its credit/churn movements cover the 90 days up to it, which hold the base's second
# announced state (2026-04-01) and start after its first (2026-02-01), so customers move between grades and risks
TODAY = dt.datetime(2026, 5, 15, 12, 0, tzinfo=dt.UTC)
MOVEMENT_DAYS = 90


def counts(frame: pd.DataFrame, *columns: str) -> dict:
    return {key: int(n) for key, n in frame.groupby(list(columns), dropna=False).size().items()}


def state_before(history: pd.DataFrame, field: str, moment: dt.datetime) -> pd.Series:
    """Each customer's last announced `field` before `moment`."""
    earlier = history[history["scored_at"] < moment].sort_values("scored_at", kind="stable")
    return earlier.groupby("customer_id").tail(1).set_index("customer_id")[field]  # tail, not last(): a None state counts


def expected_movements(history: pd.DataFrame, field: str) -> dict:
    today = TODAY.date()
    start = dt.datetime.combine(today - dt.timedelta(days=MOVEMENT_DAYS - 1), dt.time(), dt.UTC)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)
    at_start, at_end = state_before(history, field, start), state_before(history, field, end)
    pairs = pd.DataFrame({"from": at_start.reindex(at_end.index).fillna("new"), "to": at_end.fillna("unrated")})
    return {(a, b): int(n) for (a, b), n in pairs.value_counts().items()}


@pytest.fixture
async def dashboard(database_factory, db_kind, make_gateway, fakes):
    """(the dashboard's JSON for an admin, the generated base) with the scoring service's tables holding the base."""
    db = await scoring_db(database_factory, db_kind, "dashboard_base")
    base = generated_base(CUSTOMERS, seed=20)
    await store(db, base)
    await db.dispose()
    scoring = scoring_app(settings_for(db.url), start_background=False, clock=lambda: TODAY)
    # the comparison is about counts, not time (bench/service_levels_bench.py measures the reports' p99): a loaded
    # test machine must not turn a section into a timeout warning
    client, settings, _ = await make_gateway(
        fakes.transports(scoring=httpx.ASGITransport(app=scoring)), aggregate_timeout_s=120.0, upstream_timeout_s=120.0
    )
    answer = await client.get("/api/v1/dashboard", headers=role_headers(settings, "admin"))
    await scoring.state.runtime.stop()
    assert answer.status_code == 200, answer.text
    return answer.json(), base


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_dashboard_counts_equal_counts_computed_from_the_rows(dashboard):
    body, base = dashboard
    assert body["warnings"] == [] and body["unavailable"] == []
    s = body["sections"]
    scores = base["scores"]
    assert len(scores) == CUSTOMERS

    pareto = s["pareto"]
    assert pareto["customers"] == CUSTOMERS
    by_class = scores.assign(abc_class=scores["abc_class"].fillna("D")).groupby("abc_class")["contribution"]
    assert {k["class"]: k["customers"] for k in pareto["classes"] if k["customers"]} == by_class.size().to_dict()
    assert {k["class"]: k["contribution"] for k in pareto["classes"] if k["customers"]} == {
        k: pytest.approx(v, abs=0.05) for k, v in by_class.sum().to_dict().items()
    }

    rfm = s["rfm"]
    assert rfm["customers"] == CUSTOMERS
    assert {(c["r"], c["f"]): c["count"] for c in rfm["cells"]} == counts(scores, "rfm_r", "rfm_f")
    assert {g["segment"]: g["count"] for g in rfm["segments"]} == scores["rfm_segment"].value_counts().to_dict()

    tiers = s["tiers"]
    assert tiers["customers"] == CUSTOMERS
    assert {t["tier"]: t["count"] for t in tiers["tiers"]} == scores["tier"].value_counts().to_dict()

    for name, column in MATRIX_COLUMN.items():
        matrix = s["matrices"]["matrices"][name]
        expected = scores.groupby(column).agg(n=("customer_id", "size"), revenue=("revenue_12m", "sum"))
        assert matrix["customers"] == CUSTOMERS, name
        got = {c["cell"]: (c["customers"], c["revenue"]) for c in matrix["cells"] if c["customers"]}
        assert got == {cell: (int(r.n), pytest.approx(r.revenue, abs=0.05)) for cell, r in expected.iterrows()}, name

    abc = s["abc"]
    value = scores["contribution"]
    assert abc["customers"] == CUSTOMERS and abc["contributors"] == int((value > 0).sum())
    assert split_counts(abc["splits"]["three_way"]) == grouped(
        scores, expected_classes(scores, value, [("A", 0.2), ("B", 0.5)], "C"), value
    )
    assert split_counts(abc["splits"]["four_way"]) == grouped(
        scores, expected_classes(scores, value, [("A", 0.01), ("B", 0.05), ("C", 0.20)], "D"), value
    )
    rank = value.rank(method="first", ascending=False)  # ties: the smaller customer id first, as the report ranks
    assert split_counts(abc["splits"]["ten_way"]) == grouped(scores, ((rank - 1) * 10 // len(scores) + 1).astype(int), value)

    credit = s["credit_churn"]
    grades = scores["credit_grade"].fillna("unrated")
    assert credit["customers"] == CUSTOMERS
    assert {d["value"]: d["customers"] for d in credit["credit_grades"] if d["customers"]} == grades.value_counts().to_dict()
    assert {d["value"]: d["customers"] for d in credit["churn_risk"] if d["customers"]} == scores["churn_risk"].value_counts().to_dict()
    assert {(g["credit_grade"], g["churn_risk"]): g["customers"] for g in credit["grade_by_risk"]} == counts(
        scores.assign(credit_grade=grades), "credit_grade", "churn_risk"
    )
    for field in ("credit_grade", "churn_risk"):
        moved = {(t["from"], t["to"]): t["customers"] for t in credit["movements"][field]["transitions"]}
        expected = expected_movements(base["history"], field)
        assert moved == expected and sum(expected.values()) == CUSTOMERS, field
        assert any(a != b and a != "new" for a, b in expected), field  # the period does hold movements
