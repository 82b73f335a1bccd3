"""Back-fill command, model report command, the step rule of CustomerScored and the recompute scheduler."""
import datetime as dt
import json

import pytest
from scoring_support import AS_OF, clock, event, feed, processor, scoring_db, settings_for
from sqlalchemy import func, select

from crm_common.events.logistics import OrderCreated
from crm_common.outbox import outbox_table
from crm_common.testing import wait_until
from crm_scoring import cli
from crm_scoring.db import customer_scores, customers, orders, population_model, score_history
from crm_scoring.main import create_app
from crm_scoring.scoring.service import moved_past_step

CSV = """customer_id,order_date,amount,margin,service_type
{rows}"""


def write_orders(path, n_customers=30, weeks=80):
    lines = []
    start = dt.date(2025, 1, 6)
    for c in range(n_customers):
        every = 1 + c % 4
        last_week = weeks if c % 6 else weeks // 2  # every sixth customer stops half way
        for w in range(0, last_week, every):
            lines.append(f"imp-{c:02d},{start + dt.timedelta(weeks=w, days=c % 5)},{100 + 37 * c:.2f},{(100 + 37 * c) * 0.2:.2f},{'trunk' if c % 2 else 'express'}")
    path.write_text(CSV.format(rows="\n".join(lines)) + "\n")
    return len(lines)


async def test_import_orders_backfills_and_is_idempotent(database_factory, tmp_path):
    db = await scoring_db(database_factory, "sqlite", "import")
    path = tmp_path / "orders.csv"
    n = write_orders(path)
    settings = settings_for(db.url)
    as_of = dt.datetime(2026, 7, 15, tzinfo=dt.timezone.utc)
    result = await cli.import_orders(db, settings, path, as_of=as_of)
    assert result["rows"] == n and result["customers"] == 30
    again = await cli.import_orders(db, settings, path, as_of=as_of, recompute=False)
    assert again["rows"] == n
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(orders)) == n  # nothing doubled
        assert await session.scalar(select(func.count()).select_from(customers).where(customers.c.is_stub == 1)) == 30
        scored = dict((await session.execute(select(customer_scores.c.customer_id, customer_scores.c.churn_risk))).all())
        assert await session.scalar(select(func.count()).select_from(population_model)) == 1
    assert len(scored) == 30
    assert scored["imp-06"] == "high" and scored["imp-07"] == "low"  # stopped half way vs still ordering
    await db.dispose()


def test_import_rejects_bad_rows(tmp_path):
    import pandas as pd

    with pytest.raises(cli.ImportError_, match="line 3"):
        cli.prepare(pd.DataFrame({"customer_id": ["a", "b"], "order_date": ["2025-01-01", "2025-01-02"], "amount": [1.0, -5.0]}), 2, "CNY")
    with pytest.raises(cli.ImportError_, match="missing columns: amount"):
        cli.prepare(pd.DataFrame({"customer_id": ["a"], "order_date": ["2025-01-01"]}), 2, "CNY")


def test_model_report_command(database_factory, tmp_path, capsys):
    import asyncio

    db_url = asyncio.run(_imported(database_factory, tmp_path))
    assert cli.main(["model-report", "--calibration-end", "2025-12-31", "--database-url", db_url]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["parameters"]) == {"r", "alpha", "a", "b"} and report["customers"] == 30
    assert report["holdout"]["actual_total"] > 0
    # the by-group figures add up to the totals
    groups = report["holdout"]["by_calibration_orders"]
    assert sum(g["customers"] * g["actual_mean"] for g in groups) == pytest.approx(report["holdout"]["actual_total"], rel=1e-3)
    assert sum(g["customers"] * g["predicted_mean"] for g in groups) == pytest.approx(report["holdout"]["predicted_total"], rel=1e-3)
    assert cli.main(["model-report", "--calibration-end", "2030-01-01", "--database-url", db_url]) == 2


async def _imported(database_factory, tmp_path) -> str:
    db = await scoring_db(database_factory, "sqlite", "report")
    path = tmp_path / "orders.csv"
    write_orders(path)
    await cli.import_orders(db, settings_for(db.url), path, recompute=False)
    await db.dispose()
    return db.url


def test_step_rule():
    before = {"scores": {"loyalty": 50.0, "satisfaction": 80.0}, "abc_class": "B", "rfm_segment": "loyal", "credit_grade": "B", "tier": "ordinary"}
    assert not moved_past_step(before, {**before, "scores": {"loyalty": 54.9, "satisfaction": 76.0}}, 5.0)
    assert moved_past_step(before, {**before, "scores": {"loyalty": 55.0, "satisfaction": 80.0}}, 5.0)
    assert moved_past_step(before, {**before, "abc_class": "A"}, 5.0)
    assert moved_past_step(before, {**before, "scores": {"loyalty": 50.0}}, 5.0)
    assert moved_past_step(None, before, 5.0)


async def test_small_moves_are_not_announced(database_factory):
    db = await scoring_db(database_factory, "sqlite", "step")
    proc, _ = processor(db, settings_for(db.url, score_step=30.0))
    base = [event(OrderCreated(order_id=f"s{i}", customer_id="steady", order_date=AS_OF - dt.timedelta(days=7 * i), amount=1000), "steady") for i in range(1, 30)]
    await feed(proc, base, batch_sizes=(100,))
    await feed(proc, [event(OrderCreated(order_id="s-new", customer_id="steady", order_date=AS_OF - dt.timedelta(days=1), amount=1000), "steady")])
    async with db.sessions() as session:
        scored = await session.scalar(select(func.count()).select_from(outbox_table).where(outbox_table.c.event_type == "CustomerScored"))
        history = await session.scalar(select(func.count()).select_from(score_history))
        orders_12m = await session.scalar(select(customer_scores.c.orders_12m))
    assert orders_12m == 30  # the second batch was scored...
    assert scored == 1 and history == 1  # ...but only the first score was announced
    await db.dispose()


async def test_scheduler_recomputes_a_fresh_installation_at_start(database_factory):
    db = await scoring_db(database_factory, "sqlite", "scheduler")
    proc, _ = processor(db)
    await feed(proc, [event(OrderCreated(order_id=f"o{i}", customer_id=f"c{i % 25}", order_date=AS_OF - dt.timedelta(days=3 * i), amount=10 + i), f"c{i % 25}") for i in range(200)])
    settings = settings_for(db.url, run_scheduler=True, run_outbox_relay=False, run_consumers=False, recompute_interval_s=3600)
    app = create_app(settings, clock=clock)

    async def model_row():
        async with db.sessions() as session:
            return await session.scalar(select(func.count()).select_from(population_model))

    async with app.router.lifespan_context(app):
        await wait_until(model_row, timeout_s=30)
    async with db.sessions() as session:
        classes = set((await session.execute(select(customer_scores.c.abc_class))).scalars())
    assert "A" in classes
    await db.dispose()
