"""The management reports over a generated base, against figures computed from the same rows with pandas (an independent
computation: ranks, cut-offs and groupings done in Python, not in SQL), on both databases; their filters, CSV
downloads and bad input; region, industry and account manager learnt from the profile's events."""

import csv
import datetime as dt
import io
import math

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select

from crm_common.events.customers import CustomerRegistered, CustomerUpdated
from crm_devbroker.testing import edge_auth
from crm_scoring.main import create_app
from crm_scoring.model.abc import class_counts
from crm_scoring.scoring.models import customer_scores, customers, orders, score_history
from scoring_support import AS_OF, clock, event, feed, processor, scoring_db, settings_for

UTC = dt.UTC
REGIONS, INDUSTRIES, MANAGERS = ["east", "north", "south"], ["retail", "auto", "pharma"], ["am-1", "am-2", "am-3", "am-4"]
TIERS = ["key_account", "ordinary", "small", "at_risk"]
SERVICES = ["warehousing", "trunk", "express"]
GRADES, RISKS = ["A", "B", "C", "D"], ["low", "medium", "high"]
CELLS = {
    "current_potential": ["important", "medium", "big", "small"],
    "value_loyalty": ["keep_close", "win_loyalty", "grow_value", "low_priority"],
    "loyalty_credit": ["gold", "to_develop", "to_watch", "to_drop"],
}
MATRIX_COLUMN = {"current_potential": "value_matrix", "value_loyalty": "value_loyalty", "loyalty_credit": "credit_loyalty"}
PERIOD = (dt.date(2026, 3, 1), dt.date(2026, 5, 31))
START_OF_PERIOD = dt.datetime(2026, 3, 1, tzinfo=UTC)


def generated_base(n: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(n)]
    contribution = np.round(10 ** rng.uniform(1, 5, n), 2)
    contribution[rng.random(n) < 0.1] = 0.0  # customers that contribute nothing
    contribution[:40] = 5000.0  # ties: the customer id breaks them
    profile = pd.DataFrame(
        {
            "customer_id": ids,
            "region": rng.choice(REGIONS + [None], n),
            "industry": rng.choice(INDUSTRIES, n),
            "account_manager": rng.choice(MANAGERS, n),
        }
    )
    scores = pd.DataFrame(
        {
            "customer_id": ids,
            "tier": rng.choice(TIERS, n),
            "contribution": contribution,
            "revenue_12m": np.round(contribution * 1.3, 2),
            "credit_grade": rng.choice(GRADES + [None], n),
            "churn_risk": rng.choice(RISKS, n),
            "rfm_r": rng.integers(1, 6, n),
            "rfm_f": rng.integers(0, 6, n),
            **{MATRIX_COLUMN[m]: rng.choice(cells, n) for m, cells in CELLS.items()},
        }
    )
    per_customer = rng.integers(0, 4, n)
    owner = np.repeat(np.arange(n), per_customer)
    days = (dt.date(2026, 1, 1) - dt.date(1970, 1, 1)).days + rng.integers(0, 180, owner.size)
    order_rows = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(owner.size)],
            "customer_id": np.array(ids)[owner],
            "order_day": days,
            "amount": np.round(rng.uniform(10, 1000, owner.size), 2),
            "service_type": rng.choice(SERVICES, owner.size),
            "cancelled": rng.random(owner.size) < 0.05,
        }
    )
    # two announced states per customer: one before the period (some customers have none) and one inside it
    before = scores.sample(frac=0.8, random_state=seed).assign(
        scored_at=dt.datetime(2026, 2, 1, tzinfo=UTC),
        credit_grade=lambda d: rng.choice(GRADES, len(d)),
        churn_risk=lambda d: rng.choice(RISKS, len(d)),
    )
    inside = scores.assign(scored_at=dt.datetime(2026, 4, 1, tzinfo=UTC))
    return {"profile": profile, "scores": scores, "orders": order_rows, "history": pd.concat([before, inside])}


def _none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


async def store(db, base: dict[str, pd.DataFrame]) -> None:
    now = AS_OF
    async with db.transaction() as session:
        await session.execute(
            insert(customers),
            [
                {**{k: _none(v) for k, v in r.items()}, "name": r["customer_id"], "is_stub": 0, "first_seen_at": now}
                for r in base["profile"].to_dict("records")
            ],
        )
        await session.execute(
            insert(customer_scores),
            [
                {**{k: _none(v.item() if hasattr(v, "item") else v) for k, v in r.items()}, "computed_at": now, "as_of_day": 20634}
                for r in base["scores"].to_dict("records")
            ],
        )
        await session.execute(
            insert(orders),
            [
                {
                    "order_id": r["order_id"],
                    "customer_id": r["customer_id"],
                    "order_day": int(r["order_day"]),
                    "amount": float(r["amount"]),
                    "service_type": r["service_type"],
                    "cancelled_at": now if r["cancelled"] else None,
                }
                for r in base["orders"].to_dict("records")
            ],
        )
        await session.execute(
            insert(score_history),
            [
                {
                    "customer_id": r["customer_id"],
                    "scored_at": r["scored_at"],
                    "scores": {"credit_grade": _none(r["credit_grade"]), "churn_risk": r["churn_risk"]},
                }
                for r in base["history"].sort_values("scored_at").to_dict("records")
            ],
        )


def filtered(base, **f) -> pd.DataFrame:
    frame = base["scores"].merge(base["profile"], on="customer_id")
    for name in ("region", "industry", "account_manager", "tier"):
        if name in f:
            frame = frame[frame[name] == f[name]]
    return frame


def period_revenue(base, frame: pd.DataFrame) -> pd.Series:
    first, last = ((d - dt.date(1970, 1, 1)).days for d in PERIOD)
    o = base["orders"]
    o = o[~o["cancelled"] & (o["order_day"] >= first) & (o["order_day"] <= last)]
    return frame["customer_id"].map(o.groupby("customer_id")["amount"].sum()).fillna(0.0)


def expected_classes(frame: pd.DataFrame, value: pd.Series, cumulative: list[tuple[str, float]], rest: str) -> pd.Series:
    """The model's rule (model.abc.class_counts): the first ceil(share * contributors) contributors, best first."""
    ranked = frame.assign(value=value.to_numpy()).sort_values(["value", "customer_id"], ascending=[False, True])
    contributors = int((ranked["value"] > 0).sum())
    labels = np.full(len(ranked), rest, dtype=object)
    counts = class_counts(
        contributors,
        cumulative[0][1],
        cumulative[1][1] - cumulative[0][1],
        (cumulative[2][1] - cumulative[1][1]) if len(cumulative) > 2 else 0.0,
    )
    for (label, _), upto in reversed(list(zip(cumulative, counts))):
        labels[:upto] = label
    labels[(ranked["value"] <= 0).to_numpy()] = rest
    return pd.Series(labels, index=ranked.index).reindex(frame.index)


def split_counts(report_split: dict) -> dict:
    return {row["class"]: (row["customers"], row["revenue"]) for row in report_split["classes"] if row["customers"]}


def grouped(frame: pd.DataFrame, labels: pd.Series, value: pd.Series) -> dict:
    out = (
        frame.assign(label=labels.to_numpy(), value=value.clip(lower=0).to_numpy())
        .groupby("label")
        .agg(n=("customer_id", "size"), revenue=("value", "sum"))
    )
    return {label: (int(row.n), pytest.approx(round(row.revenue, 2), abs=0.05)) for label, row in out.iterrows()}


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

        # a service type keeps the customers with a (not cancelled) order of that type
        o = base["orders"]
        users = set(o[(o["service_type"] == "express") & ~o["cancelled"]]["customer_id"])
        tiers = (await client.get("/reports/tiers", params={"service_type": "express"})).json()
        assert tiers["customers"] == len(users)

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
