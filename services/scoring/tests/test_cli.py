"""Back-fill command, model report command, the step rule of CustomerScored and the recompute scheduler."""

import asyncio
import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from crm_common.events.logistics import OrderCreated
from crm_common.outbox import outbox_table
from crm_devbroker.testing import wait_until
from crm_scoring import cli
from crm_scoring.main import create_app
from crm_scoring.scoring.models import customer_scores, customers, orders, population_model, score_history
from crm_scoring.scoring.service import moved_past_step
from scoring_support import AS_OF, clock, event, feed, processor, scoring_db, settings_for

CSV = """customer_id,order_date,amount,margin,service_type
{rows}"""


def write_orders(path, n_customers=30, weeks=80):
    lines = []
    start = dt.date(2025, 1, 6)
    for c in range(n_customers):
        every = 1 + c % 4
        last_week = weeks if c % 6 else weeks // 2  # every sixth customer stops half way
        for w in range(0, last_week, every):
            lines.append(
                f"imp-{c:02d},{start + dt.timedelta(weeks=w, days=c % 5)},{100 + 37 * c:.2f},{(100 + 37 * c) * 0.2:.2f},"
                f"{'trunk' if c % 2 else 'express'}"
            )
    path.write_text(CSV.format(rows="\n".join(lines)) + "\n")
    return len(lines)


async def test_import_orders_backfills_and_is_idempotent(database_factory, tmp_path):
    db = await scoring_db(database_factory, "sqlite", "import")
    path = tmp_path / "orders.csv"
    n = write_orders(path)
    settings = settings_for(db.url)
    as_of = dt.datetime(2026, 7, 15, tzinfo=dt.UTC)
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


def test_prepare_refuses_bad_lines_with_their_numbers_and_keeps_the_others():
    import pandas as pd

    chunk = pd.DataFrame(
        {
            "customer_id": ["a", "b", "", "d", "e"],
            "order_date": ["2025-01-01", "2025-01-02", "2025-01-03", "someday", "2025-01-05"],
            "amount": ["1.0", "-5", "3", "4", "1e400"],
        }
    )
    rows, refused = cli.prepare(chunk, 2, "CNY")
    assert [r["customer_id"] for r in rows] == ["a"]
    assert refused == [
        {"line": 3, "reason": "amount is negative"},
        {"line": 4, "reason": "no customer_id"},
        {"line": 5, "reason": "order_date is not a date"},
        {"line": 6, "reason": "amount is not a number"},
    ]
    outside = pd.DataFrame(
        {
            "customer_id": ["a"] * 4,
            "order_date": ["2025-01-01", "2025-01-01", "1999-12-31", "2200-01-01"],
            "amount": ["inf", "1e30", "1", "1"],
        }
    )
    rows, refused = cli.prepare(outside, 2, "CNY")
    assert rows == [] and [r["reason"] for r in refused] == [
        "amount is not a number",
        "amount is over 999999999.99",
        "order_date is not between 2000-01-01 and today + 366 days",
        "order_date is not between 2000-01-01 and today + 366 days",
    ]


def test_import_command_errors_are_one_line_and_exit_2(database_factory, tmp_path, capsys):
    import asyncio

    migrated = asyncio.run(scoring_db(database_factory, "sqlite", "cli-errors"))
    asyncio.run(migrated.dispose())
    good = tmp_path / "orders.csv"
    write_orders(good, n_customers=3, weeks=4)
    wrong_header = tmp_path / "wrong.csv"
    wrong_header.write_text("client,date,value\nx,2025-01-01,3\n")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    empty_db = f"sqlite:///{tmp_path / 'fresh.db'}"
    cases = [
        ([str(tmp_path / "missing.csv"), "--database-url", migrated.url], "no such file"),
        ([str(tmp_path), "--database-url", migrated.url], "is a directory"),
        ([str(wrong_header), "--database-url", migrated.url], "missing customer_id, order_date, amount"),
        ([str(binary), "--database-url", migrated.url], "cannot be read"),
        ([str(good), "--database-url", empty_db], "has no scoring tables: run `crm-scoring migrate"),
    ]
    for args, message in cases:
        assert cli.main(["import-orders", *args]) == 2, args
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and message in err and "Traceback" not in err, err


def test_import_command_summary_lists_refused_lines_and_exits_1(database_factory, tmp_path, capsys):
    import asyncio

    db = asyncio.run(scoring_db(database_factory, "sqlite", "cli-summary"))
    asyncio.run(db.dispose())
    path = tmp_path / "orders.csv"
    n = write_orders(path, n_customers=25, weeks=30)
    with path.open("a") as handle:
        handle.write("late,2025-13-40,10\n\nneg,2025-02-01,-3\n")
    assert cli.main(["import-orders", str(path), "--database-url", db.url, "--no-events"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == n + 3 and summary["imported"] == n and summary["customers"] == 25 and summary["refused"] == 3
    assert summary["refused_lines"] == [
        {"line": n + 2, "reason": "order_date is not a date"},
        {"line": n + 3, "reason": "no customer_id"},
        {"line": n + 4, "reason": "amount is negative"},
    ]
    assert summary["events"] == {
        "CustomerScored": 0,
        "CustomerTierChanged": 0,
        "ChurnRiskRaised": 0,
        "CreditGradeChanged": 0,
    }  # --no-events


def test_every_argument_has_help():
    parser = cli.build_parser()
    for command in parser._subparsers._group_actions[0].choices.values():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, (command.prog, action.dest)


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
    before = {
        "scores": {"loyalty": 50.0, "satisfaction": 80.0},
        "abc_class": "B",
        "rfm_segment": "loyal",
        "credit_grade": "B",
        "tier": "ordinary",
    }
    assert not moved_past_step(before, {**before, "scores": {"loyalty": 54.9, "satisfaction": 76.0}}, 5.0)
    assert moved_past_step(before, {**before, "scores": {"loyalty": 55.0, "satisfaction": 80.0}}, 5.0)
    assert moved_past_step(before, {**before, "abc_class": "A"}, 5.0)
    assert moved_past_step(before, {**before, "scores": {"loyalty": 50.0}}, 5.0)
    assert moved_past_step(None, before, 5.0)


async def test_small_moves_are_not_announced(database_factory):
    db = await scoring_db(database_factory, "sqlite", "step")
    # no service-level targets: the orders are never delivered, and a missed target would be a real move (satisfaction, churn signal)
    no_targets = {tier: {} for tier in ("key_account", "ordinary", "small")}
    proc, _ = processor(db, settings_for(db.url, score_step=30.0, service_level_targets=no_targets))
    base = [
        event(OrderCreated(order_id=f"s{i}", customer_id="steady", order_date=AS_OF - dt.timedelta(days=7 * i), amount=1000), "steady")
        for i in range(1, 30)
    ]
    await feed(proc, base, batch_sizes=(100,))
    await feed(
        proc, [event(OrderCreated(order_id="s-new", customer_id="steady", order_date=AS_OF - dt.timedelta(days=1), amount=1000), "steady")]
    )
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
    await feed(
        proc,
        [
            event(
                OrderCreated(order_id=f"o{i}", customer_id=f"c{i % 25}", order_date=AS_OF - dt.timedelta(days=3 * i), amount=10 + i),
                f"c{i % 25}",
            )
            for i in range(200)
        ],
    )
    settings = settings_for(db.url, run_scheduler=True, run_outbox_relay=False, run_consumers=False)
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


def test_schedule_is_wall_clock_in_the_configured_zone():
    from crm_scoring.scoring import scheduler as sch

    utc = dt.UTC
    # 02:00 in Shanghai is 18:00 UTC the day before
    now = dt.datetime(2026, 12, 7, 9, 0, tzinfo=utc)  # 17:00 in Shanghai
    assert sch.last_scheduled("0 2 * * *", "Asia/Shanghai", now) == dt.datetime(2026, 12, 6, 18, 0, tzinfo=utc)
    assert sch.next_scheduled("0 2 * * *", "Asia/Shanghai", now) == dt.datetime(2026, 12, 7, 18, 0, tzinfo=utc)
    assert sch.last_scheduled("0 2 * * *", "Asia/Shanghai", dt.datetime(2026, 12, 6, 18, 0, tzinfo=utc)) == dt.datetime(
        2026, 12, 6, 18, 0, tzinfo=utc
    )
    assert sch.is_due("0 2 * * *", "Asia/Shanghai", None, now)  # never ran
    assert sch.is_due("0 2 * * *", "Asia/Shanghai", dt.datetime(2026, 12, 5, 18, 30, tzinfo=utc), now)  # last night's run was missed
    assert not sch.is_due("0 2 * * *", "Asia/Shanghai", dt.datetime(2026, 12, 6, 18, 5, tzinfo=utc), now)  # ran at 02:05 today
    # with daylight saving the run stays at 02:00 local time: 00:00 UTC in summer (CEST), 01:00 UTC in winter (CET)
    assert sch.next_scheduled("0 2 * * *", "Europe/Berlin", dt.datetime(2026, 7, 1, 12, 0, tzinfo=utc)) == dt.datetime(
        2026, 7, 2, 0, 0, tzinfo=utc
    )
    assert sch.next_scheduled("0 2 * * *", "Europe/Berlin", dt.datetime(2026, 12, 1, 12, 0, tzinfo=utc)) == dt.datetime(
        2026, 12, 2, 1, 0, tzinfo=utc
    )
    with pytest.raises(ValueError, match="cron"):
        settings_for("sqlite://", recompute_cron="every night")
    with pytest.raises(ValueError, match="time zone"):
        settings_for("sqlite://", time_zone="Mars/Olympus")


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])
async def test_a_missed_run_is_caught_up_at_start_and_one_replica_does_it(database_factory, db_kind):
    from crm_scoring.runtime import build_runtime
    from crm_scoring.scoring.scheduler import RecomputeScheduler, last_scheduled

    db = await scoring_db(database_factory, db_kind, "catch-up")
    proc, _ = processor(db)
    await feed(
        proc,
        [
            event(
                OrderCreated(order_id=f"o{i}", customer_id=f"c{i % 25}", order_date=AS_OF - dt.timedelta(days=3 * i), amount=10 + i),
                f"c{i % 25}",
            )
            for i in range(200)
        ],
    )
    settings = settings_for(db.url, run_outbox_relay=False, run_consumers=False)
    now = dt.datetime.now(dt.UTC)  # the recompute stamps the real time
    two_nights_ago = last_scheduled(settings.recompute_cron, settings.time_zone, now) - dt.timedelta(days=1)
    async with db.transaction() as session:  # the last run was two nights ago: last night's was missed while down
        await session.execute(
            population_model.insert().values(id=1, computed_at=two_nights_ago + dt.timedelta(minutes=5), as_of_day=0, params={})
        )
    replicas = [
        RecomputeScheduler(build_runtime(settings, clock=clock), settings.recompute_cron, settings.time_zone, now=lambda: now)
        for _ in range(2)
    ]
    for replica in replicas:
        await replica.runtime.start(relay=False, consumers=False)
    try:
        results = await asyncio.gather(*(r.run_if_due() for r in replicas))
        assert sum(r is not None for r in results) == 1  # one replica recomputed, the other found it done (or locked)
        assert [await r.run_if_due() for r in replicas] == [None, None]  # not due again until 02:00 tomorrow
    finally:
        for replica in replicas:
            await replica.runtime.stop()
    async with db.sessions() as session:
        assert await session.scalar(select(population_model.c.computed_at)) > now - dt.timedelta(hours=1)
    await db.dispose()
