"""The acceptance run's consumer faults, alone, on the real broker and PostgreSQL: an InboxConsumer task
cancelled and started again ("kill"), or a new consumer started and the old one stopped ("replace",
what a service restart does), several times while events stream in. Every event must be applied
exactly once, in reasonable time.

Found by the acceptance run: after such restarts some partitions were no longer consumed by anyone
in the group, while a paused broker alone did no harm.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from common_support import RecordingHandler, applied, applied_metadata, order_event
from sqlalchemy import func, select

from crm_common.bus import KafkaPublisher
from crm_common.consumer import InboxConsumer
from crm_common.db import Database
from crm_common.outbox import messaging_metadata
from crm_devbroker.testing import wait_until


async def _counts(db: Database) -> tuple[int, int]:
    async with db.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(applied))
        distinct = await session.scalar(select(func.count(func.distinct(applied.c.event_id))))
    return int(total), int(distinct)


@pytest.mark.parametrize("how", ["kill", "replace"])
async def test_consumer_restarted_during_a_stream_applies_every_event_once(database_factory, kafka_settings, postgres_available, how):
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable")
    db = Database(await database_factory.create("postgres", "e2econs"))
    async with db.engine.begin() as connection:
        await connection.run_sync(messaging_metadata.create_all)
        await connection.run_sync(applied_metadata.create_all)
    publisher = KafkaPublisher(kafka_settings, client_id="e2e-restart")
    handler = RecordingHandler()

    consumers: list[InboxConsumer] = []

    def new_consumer() -> InboxConsumer:
        consumers.append(InboxConsumer(db, kafka_settings, handler, publisher, batch_size=20))
        return consumers[-1]

    consumer = new_consumer()
    task = asyncio.create_task(consumer.run())
    total = 400
    restarts = 0
    try:
        for i in range(total):
            await publisher.publish(order_event(f"O-{i}-{uuid.uuid4().hex[:6]}", customer_id=f"c{i % 17}"))
            if i % 80 == 79:  # a restart every 80 events
                if how == "kill":
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    task = asyncio.create_task(consumer.run())
                else:
                    old, old_task = consumer, task
                    consumer = new_consumer()
                    task = asyncio.create_task(consumer.run())
                    await asyncio.sleep(0.2)
                    old.stop()
                    old_task.cancel()
                    await asyncio.gather(old_task, return_exceptions=True)
                restarts += 1
            await asyncio.sleep(0.01)

        async def all_applied():
            return (await _counts(db))[1] == total

        try:
            await wait_until(all_applied, timeout_s=60, interval_s=0.5)
        finally:
            applied_total, distinct = await _counts(db)
            live = consumer._consumer
            assignment = sorted((tp.topic, tp.partition) for tp in live.assignment()) if live is not None else None
            watchdog_rejoins = sum(c.join_restarts for c in consumers)
            print(
                f"{how}: {restarts} restarts, {distinct}/{total} events applied, {applied_total - distinct} applied twice, "
                f"{watchdog_rejoins} watchdog rejoins; the last consumer's assignment: {assignment}"
            )
        assert applied_total == distinct, "an event was applied twice"
    finally:
        consumer.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.stop()
        await db.dispose()
