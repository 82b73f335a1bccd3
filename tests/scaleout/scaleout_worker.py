"""A consumer service of the scale-out harness's own, built only on crm_common (no service code).

`python -m scaleout_worker` runs ServiceRuntime + run_worker exactly like `python -m crm_<pkg>.worker`:
one InboxConsumer whose handler folds order and payment events into per-(customer, topic) rows.
Besides counts and sums, each row keeps a hash chain over the event ids in the order they were
applied, so two runs have the same state only if every key's events were applied in the same order.
A row is written by exactly one partition (key = customer, one topic), hence by one replica.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Column, Integer, MetaData, Numeric, PrimaryKeyConstraint, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_common.db import Database
from crm_common.outbox import messaging_metadata
from crm_common.runtime import ServiceRuntime, run_worker
from crm_common.settings import ServiceSettings

metadata = MetaData()

customer_topic_totals = Table(
    "scaleout_customer_topic_totals",
    metadata,
    Column("customer_id", String(100), nullable=False),
    Column("topic", String(100), nullable=False),
    Column("events", Integer, nullable=False),
    Column("amount", Numeric(18, 2), nullable=False),
    Column("chain", String(64), nullable=False),
    PrimaryKeyConstraint("customer_id", "topic"),
)


class ScaleoutSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCALEOUT_", extra="ignore")

    service_name: str = "scaleout-recorder"
    database_url: SecretStr = SecretStr("sqlite:///var/scaleout.db")


class Recorder:
    name = "scaleout-recorder"
    topics = ("logistics.orders", "finance.payments")
    event_types = None  # every valid event of these topics

    async def handle(self, session: AsyncSession, event: Event) -> None:
        envelope = event.envelope
        topic = ".".join(event.delivery.topic.split(".")[-2:])  # logical name: the run's prefix removed
        amount = Decimal(str(getattr(event.payload, "amount", 0) or 0))
        key = (envelope.key, topic)
        row = (
            await session.execute(
                select(customer_topic_totals).where(customer_topic_totals.c.customer_id == key[0], customer_topic_totals.c.topic == key[1])
            )
        ).first()
        previous = row.chain if row else ""
        chain = hashlib.sha256(f"{previous}:{envelope.event_id}".encode()).hexdigest()
        if row is None:
            await session.execute(
                customer_topic_totals.insert().values(customer_id=key[0], topic=key[1], events=1, amount=amount, chain=chain)
            )
        else:
            await session.execute(
                update(customer_topic_totals)
                .where(customer_topic_totals.c.customer_id == key[0], customer_topic_totals.c.topic == key[1])
                .values(events=customer_topic_totals.c.events + 1, amount=customer_topic_totals.c.amount + amount, chain=chain)
            )


async def create_schema(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.run_sync(messaging_metadata.create_all)
    finally:
        await db.dispose()


def main() -> None:
    settings = ScaleoutSettings()
    run_worker(ServiceRuntime(settings, handlers=[Recorder()]))


if __name__ == "__main__":
    main()
