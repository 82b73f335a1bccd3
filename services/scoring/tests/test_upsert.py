"""The bulk fact statements (crm_scoring.scoring.upsert) on both databases: PostgreSQL sends each column as one
array (unnest), SQLite the portable multi-row statement; both must merge the same way."""

import datetime as dt

import pytest
from sqlalchemy import select

from crm_scoring.scoring.ingest import ORDER_RULES, mark_dirty
from crm_scoring.scoring.models import orders, rescore_queue
from crm_scoring.scoring.upsert import insert_ignore, merge_rows, upsert
from scoring_support import scoring_db

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def _orders(db) -> dict[str, dict]:
    async with db.transaction() as session:
        return {r["order_id"]: dict(r) for r in (await session.execute(select(orders))).mappings()}


async def test_sparse_rows_merge_by_their_rules_in_any_batch(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "upsert")
    try:
        created = {"order_id": "o1", "customer_id": "c1", "order_date": T0, "order_day": 20513, "amount": 100.0, "currency": "CNY"}
        shipped = {"order_id": "o1", "customer_id": "c1", "shipped_at": T0 + dt.timedelta(hours=5)}
        shipped_again_later = {"order_id": "o1", "customer_id": "c1", "shipped_at": T0 + dt.timedelta(hours=9)}
        delayed = [{"order_id": "o1", "customer_id": "c1", "delay_minutes": m} for m in (30, 90, 45)]
        other = {"order_id": "o2", "customer_id": "c2", "lost": 1, "lost_value": 12.5}
        async with db.transaction() as session:  # one batch: merged in Python, one statement
            await upsert(
                session, orders, merge_rows([shipped_again_later, delayed[0], other], "order_id", ORDER_RULES), "order_id", ORDER_RULES
            )
        async with db.transaction() as session:  # then the rest, against the stored rows
            await upsert(session, orders, merge_rows([created, *delayed[1:]], "order_id", ORDER_RULES), "order_id", ORDER_RULES)
            await upsert(session, orders, [shipped], "order_id", ORDER_RULES)
        rows = await _orders(db)
        assert rows["o1"]["shipped_at"] == shipped["shipped_at"]  # min
        assert rows["o1"]["delay_minutes"] == 90  # max
        assert (
            rows["o1"]["amount"] == 100.0 and rows["o1"]["order_date"] == T0 and rows["o1"]["currency"] == "CNY"
        )  # set, kept by later NULLs
        assert rows["o1"]["cancelled_at"] is None and rows["o1"]["lost"] is None  # columns no event carried
        assert rows["o2"]["lost"] == 1 and rows["o2"]["lost_value"] == 12.5 and rows["o2"]["amount"] is None
    finally:
        await db.dispose()


async def test_a_naive_datetime_is_refused_as_by_the_column_type(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "naive")
    try:
        with pytest.raises(Exception, match="naive datetime"):
            async with db.transaction() as session:
                await upsert(
                    session,
                    orders,
                    [{"order_id": "o1", "customer_id": "c1", "shipped_at": dt.datetime(2026, 3, 1)}],
                    "order_id",
                    ORDER_RULES,
                )
        assert await _orders(db) == {}
    finally:
        await db.dispose()


async def test_insert_ignore_returns_only_the_new_keys_and_marks_are_bumped(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "marks")
    try:
        async with db.transaction() as session:
            assert await insert_ignore(
                session, rescore_queue, [{"customer_id": "a", "seq": 1, "marked_at": T0}], "customer_id", returning="customer_id"
            ) == {"a"}
            fresh = await insert_ignore(
                session,
                rescore_queue,
                [{"customer_id": c, "seq": 1, "marked_at": T0} for c in ("a", "b")],
                "customer_id",
                returning="customer_id",
            )
            assert fresh == {"b"}
        async with db.transaction() as session:
            await mark_dirty(session, {"a", "c"}, T0)
        async with db.transaction() as session:
            marks = dict((await session.execute(select(rescore_queue.c.customer_id, rescore_queue.c.seq))).all())
        assert marks == {"a": 2, "b": 1, "c": 1}
    finally:
        await db.dispose()
