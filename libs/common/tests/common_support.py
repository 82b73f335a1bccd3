"""Helpers: a tiny service made only of the shared mechanisms: a table of applied events and a handler."""

import datetime as dt

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from crm_common.db import Database

applied_metadata = MetaData()
applied = Table(
    "applied",
    applied_metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),  # deliberately not unique: a double apply must be countable
    Column("key", String(100), nullable=False),
    Column("order_id", String(100), nullable=False),
)


class RecordingHandler:
    """Writes one row per applied event; fails on demand to exercise retries and dead letters."""

    name = "test-recorder"
    topics = ("logistics.orders",)
    event_types = frozenset({"OrderCreated"})

    def __init__(self, fail_order_ids=()):
        self.fail_order_ids = set(fail_order_ids)
        self.calls = 0

    async def handle(self, session, event):
        self.calls += 1
        if event.payload.order_id in self.fail_order_ids:
            raise RuntimeError(f"cannot apply {event.payload.order_id}")
        await session.execute(
            insert(applied).values(event_id=str(event.envelope.event_id), key=event.envelope.key, order_id=event.payload.order_id)
        )


async def applied_rows(db: Database) -> list:
    async with db.sessions() as session:
        return (await session.execute(select(applied.c.event_id, applied.c.key, applied.c.order_id).order_by(applied.c.seq))).all()


async def applied_count(db: Database) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(applied))


def order_event(order_id: str, customer_id: str = "c1"):
    from crm_common.events import make_event
    from crm_common.events.logistics import OrderCreated

    payload = OrderCreated(order_id=order_id, customer_id=customer_id, order_date=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), amount=10)
    return make_event(payload, key=customer_id, producer="test")
