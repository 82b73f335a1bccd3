"""The fact tables refuse what validation missed (migration 0003), and one extreme but valid order moves
only what the ABC rules say it moves."""

from __future__ import annotations

import asyncio
import datetime as dt
import math

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from crm_common.db import Database
from crm_common.events.bounds import MAX_MONEY
from crm_common.events.logistics import OrderCreated
from crm_scoring.db import migrate
from crm_scoring.model import abc
from crm_scoring.scoring.models import invoices, orders, rescore_queue
from crm_scoring.scoring.reports import pareto
from crm_scoring.scoring.service import recompute_population
from scoring_oracle import abc_class
from scoring_support import AS_OF, event, feed, history, processor, score_snapshot, settings_for

WHEN = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _order(order_id: str, **values) -> dict:
    return {
        "order_id": order_id,
        "customer_id": "c-" + order_id,
        "order_date": WHEN,
        "order_day": 20605,
        "amount": 10.0,
        "currency": "CNY",
    } | values


REFUSED_ORDERS = [
    ("infinite amount", {"amount": math.inf}),
    ("negative amount", {"amount": -0.01}),
    ("amount over the bound", {"amount": 1e30}),
    ("negative margin beyond the bound", {"margin": -1e30}),
    ("order date in year 1", {"order_date": dt.datetime(1, 1, 1, tzinfo=dt.UTC)}),
    ("order date in 9999", {"order_date": dt.datetime(9999, 1, 1, tzinfo=dt.UTC)}),
    ("order day in 9999", {"order_day": 2932532}),
    ("negative delay", {"delay_minutes": -5}),
]


async def _refused(db: Database, table, row: dict) -> bool:
    try:
        async with db.transaction() as session:
            await session.execute(insert(table), [row])
    except IntegrityError:
        return True
    return False


async def test_fact_tables_refuse_impossible_values(database_factory, db_kind):
    url = await database_factory.create(db_kind, "checks")
    await asyncio.to_thread(migrate, url)
    db = Database(url)
    try:
        for what, values in REFUSED_ORDERS:
            assert await _refused(db, orders, _order(what.replace(" ", "-"), **values)), what
        if db_kind == "postgres":  # SQLite stores a NaN as NULL (unknown), which the rule lets through
            assert await _refused(db, orders, _order("nan", amount=math.nan))
        assert await _refused(db, invoices, {"invoice_id": "i1", "customer_id": "c", "amount": 5.0, "days_overdue": 2**31 - 1})
        assert await _refused(db, invoices, {"invoice_id": "i2", "customer_id": "c", "amount": 5.0, "due_day": -719162})
        # the extremes that are valid are stored
        assert not await _refused(
            db,
            orders,
            _order(
                "max",
                amount=float(MAX_MONEY),
                margin=-float(MAX_MONEY),
                order_day=10957,
                order_date=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
            ),
        )
        assert not await _refused(
            db, orders, _order("sparse", customer_id="c", order_date=None, order_day=None, amount=None, currency=None)
        )
    finally:
        await db.dispose()


async def test_the_migration_removes_stored_impossible_facts_and_queues_their_customers(database_factory, db_kind):
    url = await database_factory.create(db_kind, "checkmig")
    await asyncio.to_thread(migrate, url, "0002")
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(orders),
                [_order("good"), _order("inf", amount=math.inf), _order("old", order_date=dt.datetime(1, 1, 1, tzinfo=dt.UTC))],
            )
            await session.execute(
                insert(invoices), [{"invoice_id": "late", "customer_id": "c-late", "amount": 1.0, "days_overdue": 2**31 - 1}]
            )
        await db.dispose()
        await asyncio.to_thread(migrate, url)
        async with db.sessions() as session:
            assert set((await session.execute(select(orders.c.order_id))).scalars()) == {"good"}
            assert (await session.execute(select(invoices.c.invoice_id))).all() == []
            assert set((await session.execute(select(rescore_queue.c.customer_id))).scalars()) == {"c-inf", "c-old", "c-late"}
    finally:
        await db.dispose()


async def test_one_extreme_valid_order_moves_only_what_the_abc_rules_move(database_factory, db_kind):
    url = await database_factory.create(db_kind, "extreme")
    await asyncio.to_thread(migrate, url)
    db = Database(url)
    settings = settings_for(url)
    try:
        proc, dead = processor(db, settings)
        await feed(proc, history(), batch_sizes=(200,))
        async with db.transaction() as session:
            await recompute_population(session, settings, AS_OF)
        before = await score_snapshot(db)
        smallest = min(before, key=lambda c: (before[c]["contribution"] or 0, c))

        extreme = OrderCreated(order_id="extreme-1", customer_id=smallest, order_date=AS_OF - dt.timedelta(days=10), amount=MAX_MONEY)
        await feed(proc, [event(extreme, smallest, AS_OF - dt.timedelta(days=10))])
        async with db.transaction() as session:
            await recompute_population(session, settings, AS_OF)
            report = await pareto(session, settings)
        after = await score_snapshot(db)
        assert dead.sent == []

        assert after[smallest]["abc_class"] == "A"
        assert all(math.isfinite(row["contribution"]) for row in report["classes"])
        # the rule: rank by contribution, cut by counts. Only the one customer's contribution changed, so the
        # others' classes are the rule applied to their old contributions next to its new one ...
        contributions = {c: s["contribution"] or 0.0 for c, s in before.items()} | {smallest: after[smallest]["contribution"]}
        cut = settings.abc_cutoffs
        thresholds = abc.thresholds(list(contributions.values()), cut.a, cut.b, cut.c)
        expected = {c: abc_class(v, thresholds) for c, v in contributions.items() if c != smallest}
        assert {c: after[c]["abc_class"] for c in expected} == expected
        # ... which moves a customer at most one class down, and only one that was above the newcomer
        for c, cls in expected.items():
            old = before[c]["abc_class"]
            assert cls == old or (abc.CLASSES.index(cls) == abc.CLASSES.index(old) + 1), (c, old, cls)
            assert before[c]["contribution"] == after[c]["contribution"], c
    finally:
        await db.dispose()
