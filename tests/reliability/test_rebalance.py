"""Promise 5: two replicas in one group, one stopped and restarted mid-stream: same state as one consumer."""

import asyncio

import pytest
from common_support import RecordingHandler, applied_metadata, applied_rows, order_event

from crm_common.bus import KafkaPublisher
from crm_common.consumer import InboxConsumer
from crm_common.db import Database
from crm_common.events import encode_envelope
from crm_common.outbox import messaging_metadata
from crm_devbroker.testing import wait_until

EVENTS = 10_000


async def _fresh_db(database_factory, kind):
    db = Database(await database_factory.create(kind, "rebalance"))
    async with db.engine.begin() as connection:
        await connection.run_sync(messaging_metadata.create_all)
        await connection.run_sync(applied_metadata.create_all)
    return db


async def _publish(kafka, count):
    publisher = KafkaPublisher(kafka, client_id="stream")
    sent = [order_event(f"r{i}", customer_id=f"c{i % 101}") for i in range(count)]
    futures = [await publisher.send("logistics.orders", e.key, encode_envelope(e)) for e in sent]
    await asyncio.gather(*futures)
    await publisher.stop()
    return sent


def _consumer(db, kafka, publisher, group_id="g-rebalance"):
    return InboxConsumer(db, kafka, RecordingHandler(), publisher, group_id=group_id, batch_size=250)


async def _count_at_least(db, n):
    return len(await applied_rows(db)) >= n


def _state(rows):
    """What a consumer's state is made of: which events were applied, per customer, how many times."""
    per_key: dict[str, list[str]] = {}
    for row in rows:
        per_key.setdefault(row.key, []).append(row.event_id)
    return {key: sorted(ids) for key, ids in per_key.items()}


@pytest.mark.slow
async def test_promise_5_rebalance_mid_stream_equals_single_consumer(database_factory, db_kind, kafka_settings):
    sent = await _publish(kafka_settings, EVENTS)
    publisher = KafkaPublisher(kafka_settings, client_id="dlq")

    single_db = await _fresh_db(database_factory, db_kind)
    single = _consumer(single_db, kafka_settings, publisher, group_id="g-single")
    task = asyncio.create_task(single.run())
    await wait_until(lambda: _count_at_least(single_db, EVENTS), timeout_s=120, interval_s=0.5)
    single.stop()
    await asyncio.wait_for(task, 20)

    pair_db = await _fresh_db(database_factory, db_kind)
    first, second = _consumer(pair_db, kafka_settings, publisher), _consumer(pair_db, kafka_settings, publisher)
    first_task, second_task = asyncio.create_task(first.run()), asyncio.create_task(second.run())
    await wait_until(lambda: _count_at_least(pair_db, EVENTS // 4), timeout_s=120, interval_s=0.05)
    second.stop()  # leaves the group mid-stream: its partitions move to the first replica
    await asyncio.wait_for(second_task, 20)
    await wait_until(lambda: _count_at_least(pair_db, EVENTS // 2), timeout_s=120, interval_s=0.05)
    restarted = _consumer(pair_db, kafka_settings, publisher)
    restarted_task = asyncio.create_task(restarted.run())  # and comes back: partitions move again
    await wait_until(lambda: _count_at_least(pair_db, EVENTS), timeout_s=180, interval_s=0.5)
    await asyncio.sleep(2)
    for consumer in (first, restarted):
        consumer.stop()
    await asyncio.gather(asyncio.wait_for(first_task, 20), asyncio.wait_for(restarted_task, 20))
    await publisher.stop()

    single_rows, pair_rows = await applied_rows(single_db), await applied_rows(pair_db)
    assert len(single_rows) == len(pair_rows) == EVENTS
    assert _state(pair_rows) == _state(single_rows)
    assert {r.event_id for r in pair_rows} == {str(e.event_id) for e in sent}
    await single_db.dispose()
    await pair_db.dispose()
