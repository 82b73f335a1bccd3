"""The management reports over a generated base, against figures computed from the same rows with pandas (an independent
computation: ranks, cut-offs and groupings done in Python, not in SQL), on both databases; their filters, CSV
downloads and bad input; region, industry and account manager learnt from the profile's events."""

import csv
import datetime as dt
import io

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

from crm_common.events.customers import CustomerRegistered, CustomerUpdated
from crm_devbroker.testing import edge_auth
from crm_scoring.main import create_app
from crm_scoring.model.abc import pareto_report
from crm_scoring.scoring.models import customers
from report_base import MATRIX_COLUMN, expected_classes, filtered, generated_base, grouped, split_counts, store
from scoring_support import clock, event, feed, processor, scoring_db, settings_for

UTC = dt.UTC
PERIOD = (dt.date(2026, 3, 1), dt.date(2026, 5, 31))
START_OF_PERIOD = dt.datetime(2026, 3, 1, tzinfo=UTC)


def period_revenue(base, frame: pd.DataFrame) -> pd.Series:
    first, last = ((d - dt.date(1970, 1, 1)).days for d in PERIOD)
    o = base["orders"]
    o = o[~o["cancelled"] & (o["order_day"] >= first) & (o["order_day"] <= last)]
    return frame["customer_id"].map(o.groupby("customer_id")["amount"].sum()).fillna(0.0)


def expected_pareto(frame: pd.DataFrame, value: pd.Series) -> dict:
    """The Pareto figures of these customers from numpy (the model's pareto_report, which the service once ran on every
    contribution it loaded): stored class, none counting as D."""
    return pareto_report(value.to_numpy(dtype=float), frame["abc_class"].fillna("D").to_numpy(dtype=object))


def pareto_figures(report: dict) -> dict:
    return {k: report[k] for k in ("customers", "total_contribution", "classes", "top_1pct_share", "top_20pct_share", "curve")}


def same_figures(got, expected) -> bool:
    """Equal, numbers to the last rounded digit (numpy's round and Python's may differ there on a tie)."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(same_figures(got[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(same_figures(a, b) for a, b in zip(got, expected))
    if isinstance(expected, float):
        return got == pytest.approx(expected, abs=1e-6)
    return got == expected


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


async def _client_app(db):
    app = create_app(settings_for(db.url), start_background=False, clock=clock)
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoring", auth=edge_auth(app))


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_reports_over_the_whole_base_equal_figures_computed_from_the_rows(database_factory, db_kind):
    n = 10_000 if db_kind == "sqlite" else 3_000
    db = await scoring_db(database_factory, db_kind, "management_reports")
    base = generated_base(n)
    await store(db, base)
    await db.dispose()
    app, client = await _client_app(db)
    async with client:
        for f in ({}, {"region": "east"}, {"industry": "pharma", "account_manager": "am-2"}, {"tier": "ordinary"}):
            frame = filtered(base, **f)
            assert len(frame) > 50, f

            tiers = (await client.get("/reports/tiers", params=f)).json()
            assert {t["tier"]: t["count"] for t in tiers["tiers"]} == frame["tier"].value_counts().to_dict() and tiers["customers"] == len(
                frame
            )
            rfm = (await client.get("/reports/rfm", params=f)).json()
            assert {(c["r"], c["f"]): c["count"] for c in rfm["cells"]} == frame.groupby(["rfm_r", "rfm_f"]).size().to_dict()

            abc = (await client.get("/reports/abc", params=f)).json()
            value = frame["contribution"]
            assert abc["customers"] == len(frame) and abc["contributors"] == int((value > 0).sum())
            assert abc["total"] == pytest.approx(value.clip(lower=0).sum(), abs=0.05)
            assert split_counts(abc["splits"]["four_way"]) == grouped(
                frame, expected_classes(frame, value, [("A", 0.01), ("B", 0.05), ("C", 0.20)], "D"), value
            )
            assert split_counts(abc["splits"]["three_way"]) == grouped(
                frame, expected_classes(frame, value, [("A", 0.2), ("B", 0.5)], "C"), value
            )
            rank = value.rank(method="first", ascending=False)  # ties: the earlier (smaller) customer id first, as in the report
            deciles = ((rank - 1) * 10 // len(frame) + 1).astype(int)
            assert split_counts(abc["splits"]["ten_way"]) == grouped(frame, deciles, value)
            assert abc["curve"][-1] == {"customer_share": 1.0, "revenue_share": 1.0}

            pareto = (await client.get("/reports/pareto", params=f)).json()
            assert pareto["filters"] == f and same_figures(pareto_figures(pareto), expected_pareto(frame, value)), f

            matrices = (await client.get("/reports/matrices", params=f)).json()["matrices"]
            for name, column in MATRIX_COLUMN.items():
                expected = frame.groupby(column).agg(n=("customer_id", "size"), revenue=("revenue_12m", "sum"))
                got = {c["cell"]: (c["customers"], c["revenue"]) for c in matrices[name]["cells"] if c["customers"]}
                assert got == {cell: (int(r.n), pytest.approx(r.revenue, abs=0.05)) for cell, r in expected.iterrows()}, (name, f)

            credit = (await client.get("/reports/credit-churn", params=f)).json()
            assert {d["value"]: d["customers"] for d in credit["churn_risk"] if d["customers"]} == frame[
                "churn_risk"
            ].value_counts().to_dict()
            assert {d["value"]: d["customers"] for d in credit["credit_grades"] if d["customers"]} == frame["credit_grade"].fillna(
                "unrated"
            ).value_counts().to_dict()

        # a cell's customers (JSON page and the whole CSV) are the rows in that cell, largest revenue first
        frame = filtered(base, region="south")
        in_cell = frame[frame["value_matrix"] == "big"].sort_values(["revenue_12m", "customer_id"], ascending=[False, True])
        page = (
            await client.get("/reports/matrices/current_potential/big/customers", params={"region": "south", "limit": 10, "offset": 5})
        ).json()
        assert page["customers"] == len(in_cell) and [i["customer_id"] for i in page["items"]] == in_cell["customer_id"].iloc[5:15].tolist()
        assert all(i["region"] == "south" for i in page["items"])
        download = await client.get("/reports/matrices/current_potential/big/customers.csv", params={"region": "south"})
        assert download.headers["content-disposition"] == 'attachment; filename="current_potential-big.csv"'
        assert [r["customer_id"] for r in _csv(download.text)] == in_cell["customer_id"].tolist()
    await app.state.runtime.stop()


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_period_service_type_movements_and_csv(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "management_reports_period")
    base = generated_base(1_500, seed=11)
    await store(db, base)
    await db.dispose()
    app, client = await _client_app(db)
    period = {"period_start": PERIOD[0].isoformat(), "period_end": PERIOD[1].isoformat()}
    async with client:
        # with a period the ABC ranks on the period's revenue (cancelled orders left out)
        frame = filtered(base)
        revenue = period_revenue(base, frame)
        abc = (await client.get("/reports/abc", params=period)).json()
        assert abc["basis"] == "period revenue" and abc["total"] == pytest.approx(revenue.sum(), abs=0.05)
        assert split_counts(abc["splits"]["four_way"]) == grouped(
            frame, expected_classes(frame, revenue, [("A", 0.01), ("B", 0.05), ("C", 0.20)], "D"), revenue
        )
        matrices = (await client.get("/reports/matrices", params=period)).json()
        assert matrices["matrices"]["value_loyalty"]["revenue"] == pytest.approx(revenue.sum(), abs=0.05)
        # and the Pareto's contribution is the period's revenue, per stored class
        pareto = (await client.get("/reports/pareto", params=period)).json()
        assert pareto["basis"] == "period revenue" and same_figures(pareto_figures(pareto), expected_pareto(frame, revenue))

        # a service type keeps the customers with a (not cancelled) order of that type
        o = base["orders"]
        users = set(o[(o["service_type"] == "express") & ~o["cancelled"]]["customer_id"])
        tiers = (await client.get("/reports/tiers", params={"service_type": "express"})).json()
        assert tiers["customers"] == len(users)
        pareto = (await client.get("/reports/pareto", params={"service_type": "express", "tier": "small"})).json()
        kept = frame[frame["customer_id"].isin(users) & (frame["tier"] == "small")]
        assert same_figures(pareto_figures(pareto), expected_pareto(kept, kept["contribution"])) and 0 < pareto["customers"] < len(users)
        chart = await client.get("/reports/pareto.svg", params={"service_type": "express", "tier": "small"})
        assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")

        # movements: the state announced before the period against the last one in it
        credit = (await client.get("/reports/credit-churn", params=period)).json()
        h = base["history"]
        before = h[h["scored_at"] < START_OF_PERIOD].set_index("customer_id")["churn_risk"]
        after = h[h["scored_at"] >= START_OF_PERIOD].set_index("customer_id")["churn_risk"]
        pairs = pd.DataFrame({"from": before.reindex(after.index).fillna("new"), "to": after}).value_counts().to_dict()
        got = {(t["from"], t["to"]): t["customers"] for t in credit["movements"]["churn_risk"]["transitions"]}
        assert got == pairs
        order = {"low": 0, "medium": 1, "high": 2}
        worse = sum(count for (a, b), count in pairs.items() if a in order and order[b] > order[a])
        assert credit["movements"]["churn_risk"]["worsened"] == worse > 0
        # a period ending before any announcement has no movements
        early = (await client.get("/reports/credit-churn", params={"period_start": "2025-01-01", "period_end": "2025-12-31"})).json()
        assert early["movements"]["credit_grade"]["transitions"] == []

        for path, first_column, rows in (
            ("/reports/abc.csv", "split", 3 + 4 + 10),
            ("/reports/matrices.csv", "matrix", None),
            ("/reports/tiers.csv", "tier", 4),
            ("/reports/credit-churn.csv", "section", None),
            ("/reports/rfm.csv", "r", 30),
        ):
            download = await client.get(path, params=period)
            assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv"), path
            parsed = _csv(download.text)
            assert download.text.startswith(first_column + ",") and (rows is None or len(parsed) == rows), (path, len(parsed))
        tier_rows = _csv((await client.get("/reports/tiers.csv")).text)
        assert {r["tier"]: int(r["customers"]) for r in tier_rows} == base["scores"]["tier"].value_counts().to_dict()
    await app.state.runtime.stop()


async def test_bad_filters_are_a_422_problem_naming_the_field(database_factory):
    db = await scoring_db(database_factory, "sqlite", "management_reports_bad")
    await db.dispose()
    app, client = await _client_app(db)
    async with client:
        cases = [
            ("/reports/abc", {"tier": "gold"}, "tier"),
            ("/reports/pareto", {"tier": "gold"}, "tier"),
            ("/reports/pareto.svg", {"period_start": "2026-03-01"}, "period_end"),
            ("/reports/matrices", {"service_type": "rail"}, "service_type"),
            ("/reports/credit-churn", {"period_start": "2026-03-01"}, "period_end"),
            ("/reports/credit-churn", {"period_start": "2026-03-01", "period_end": "2026-02-01"}, "period_end"),
            ("/reports/rfm.csv", {"period_start": "1999-12-31", "period_end": "2026-01-01"}, "period_start"),
            ("/reports/tiers", {"region": "x" * 101}, "region"),
            ("/reports/matrices/value_growth/big/customers", {}, "matrix"),
            ("/reports/matrices/current_potential/gold/customers", {}, "cell"),
            ("/reports/matrices/current_potential/big/customers", {"limit": 0}, "limit"),
        ]
        for path, params, field in cases:
            answer = await client.get(path, params=params)
            assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/problem+json"), (
                path,
                params,
                answer.text,
            )
            assert any(e["loc"][-1] == field for e in answer.json()["errors"]), (path, answer.json())
        empty = (await client.get("/reports/abc")).json()
        assert (empty["customers"], empty["total"], empty["splits"]["ten_way"]["classes"][0]["customers"]) == (0, 0.0, 0)
    await app.state.runtime.stop()


async def test_region_industry_and_account_manager_come_from_the_newest_profile_event(database_factory):
    db = await scoring_db(database_factory, "sqlite", "management_reports_profile")
    proc, _ = processor(db)
    t0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
    newer = event(
        CustomerUpdated(customer_id="c1", name="One", region="north", industry="auto", account_manager="am-9"),
        "c1",
        t0 + dt.timedelta(days=1),
    )
    older = event(CustomerRegistered(customer_id="c1", name="One", region="east", industry="retail", account_manager="am-1"), "c1", t0)
    await feed(proc, [newer, older])  # the older event arrives last and changes nothing
    async with db.sessions() as session:
        row = (await session.execute(select(customers.c.region, customers.c.industry, customers.c.account_manager))).one()
    assert tuple(row) == ("north", "auto", "am-9")
    await db.dispose()
