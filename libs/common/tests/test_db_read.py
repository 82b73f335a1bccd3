"""Database.read(): hot read paths outside any transaction, straight through asyncpg on PostgreSQL.

The asyncpg rows must equal what SQLAlchemy gives for the same statement (types included), lists travel as one
array parameter, and a connection the database dropped costs one retry, never an error; a failing statement is
not retried."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import pytest_asyncio
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from crm_common.db import Database, SessionReader, asyncpg_sql

metadata = MetaData()
parcels = Table(
    "read_parcels",
    metadata,
    Column("id", String(20), primary_key=True),
    Column("kind", String(10)),
    Column("weight", Numeric(10, 2)),
    Column("tags", JSON),
    Column("seen_at", DateTime(timezone=True)),
)
AT = dt.datetime(2026, 3, 1, 8, 30, 0, 1230, tzinfo=dt.UTC)
BY_IDS = select(parcels).where(parcels.c.id == any_(bindparam("ids", type_=ARRAY(String)))).order_by(parcels.c.id)
BY_KIND = select(parcels.c.id).where(parcels.c.kind.in_([literal("box"), literal("pallet")]), parcels.c.weight > bindparam("min"))


@pytest_asyncio.fixture
async def postgres_db(database_factory, postgres_available):
    if not postgres_available:
        pytest.skip("needs PostgreSQL")
    db = Database(await database_factory.create("postgres", "read"), read_pool_size=2)
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        await connection.execute(
            insert(parcels),
            [
                {"id": "p1", "kind": "box", "weight": Decimal("1.50"), "tags": {"fragile": True, "zh": "易碎"}, "seen_at": AT},
                {"id": "p2", "kind": "pallet", "weight": Decimal("300.00"), "tags": None, "seen_at": None},
                {"id": "p3", "kind": "letter", "weight": Decimal("0.05"), "tags": ["a"], "seen_at": AT},
            ],
        )
    yield db
    await db.dispose()


async def test_asyncpg_rows_equal_sqlalchemy_rows(postgres_db):
    fast = await postgres_db.read(lambda reader: reader.rows(BY_IDS, {"ids": ["p3", "p1", "nope"]}))
    async with postgres_db.engine.connect() as connection:
        slow = await SessionReader(connection).rows(BY_IDS, {"ids": ["p3", "p1", "nope"]})
    assert [dict(row) for row in fast] == [dict(row) for row in slow]
    assert [row["id"] for row in fast] == ["p1", "p3"]
    assert fast[0]["tags"] == {"fragile": True, "zh": "易碎"} and fast[0]["weight"] == Decimal("1.50")
    assert fast[0]["seen_at"] == AT and fast[0]["seen_at"].utcoffset() == dt.timedelta(0)


async def test_constants_given_as_literals_travel_as_parameters(postgres_db):
    sql, names, fixed = asyncpg_sql(BY_KIND)
    assert "box" not in sql and set(fixed.values()) == {"box", "pallet"} and "min" in names and "min" not in fixed
    rows = await postgres_db.read(lambda reader: reader.rows(BY_KIND, {"min": Decimal("1")}))
    assert sorted(row["id"] for row in rows) == ["p1", "p2"]
    with pytest.raises(KeyError):  # a value the statement needs is never silently NULL
        await postgres_db.read(lambda reader: reader.rows(BY_KIND, {"minimum": 1}))


def test_a_list_rendered_at_execution_is_refused():
    expanding = select(parcels.c.id).where(parcels.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="array parameters"):
        asyncpg_sql(expanding)
    with pytest.raises(ValueError):
        asyncpg_sql(select(parcels.c.id).where(parcels.c.kind.in_(("box", "pallet"))))


async def test_a_terminated_connection_is_retried_once_on_a_fresh_one(postgres_db):
    attempts = []

    async def work(reader):
        attempts.append(reader.connection.get_server_pid())
        if len(attempts) == 1:  # the database drops this very connection, as a restart or failover would
            async with postgres_db.engine.connect() as admin:
                await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": attempts[0]})
        return await reader.rows(BY_IDS, {"ids": ["p2"]})

    rows = await postgres_db.read(work)
    assert [row["id"] for row in rows] == ["p2"]
    assert len(attempts) == 2 and attempts[0] != attempts[1]
    assert [row["id"] for row in await postgres_db.read(lambda r: r.rows(BY_IDS, {"ids": ["p1"]}))] == ["p1"]


async def test_a_failing_statement_is_not_retried(postgres_db):
    attempts = []

    async def work(reader):
        attempts.append(1)
        return await reader.rows(select(func.div(literal(1), literal(0)).label("x")))

    with pytest.raises(Exception, match="division by zero"):
        await postgres_db.read(work)
    assert attempts == [1]


async def test_read_outside_a_transaction_sees_what_others_commit(postgres_db):
    async def read_twice(reader):
        first = await reader.rows(BY_IDS, {"ids": ["p9"]})
        async with postgres_db.transaction() as session:
            await session.execute(insert(parcels).values(id="p9", kind="box", weight=Decimal("2")))
        return first, await reader.rows(BY_IDS, {"ids": ["p9"]})

    before, after = await postgres_db.read(read_twice)
    assert before == [] and [row["id"] for row in after] == ["p9"]


async def test_sqlite_reads_through_sqlalchemy(database_factory):
    db = Database(await database_factory.create("sqlite", "read"))
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(insert(parcels).values(id="s1", kind="box", weight=Decimal("1"), seen_at=AT))
        expanding = select(parcels.c.id, parcels.c.seen_at).where(parcels.c.id.in_(bindparam("ids", expanding=True)))

        async def work(reader):
            assert reader.arrays is False
            return await reader.rows(expanding, {"ids": ["s1", "s2"]})

        rows = await db.read(work)
        assert [row["id"] for row in rows] == ["s1"]
    finally:
        await db.dispose()


async def test_columns_of_integers_use_integer_arrays(postgres_db):
    numbers = Table("read_numbers", MetaData(), Column("n", Integer, primary_key=True))
    async with postgres_db.engine.begin() as connection:
        await connection.run_sync(numbers.create)
        await connection.execute(insert(numbers), [{"n": n} for n in range(5)])
    statement = select(numbers.c.n).where(numbers.c.n == any_(bindparam("ns", type_=ARRAY(Integer)))).order_by(numbers.c.n)
    rows = await postgres_db.read(lambda reader: reader.rows(statement, {"ns": [4, 1, 7]}))
    assert [row["n"] for row in rows] == [1, 4]
