"""The outbox and the inbox against the real broker, on SQLite and PostgreSQL."""

import asyncio
from types import SimpleNamespace

import pytest
from common_support import RecordingHandler, applied_count, applied_rows, order_event
from sqlalchemy import func, select

from crm_common.bus import KafkaPublisher
from crm_common.consumer import Delivery, InboxConsumer, InboxProcessor
from crm_common.events import encode_envelope
from crm_common.outbox import OutboxRelay, add_to_outbox, outbox_table
from crm_devbroker.testing import CollectingDeadLetters, read_events, read_raw, wait_until


async def _pending(db):
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).where(outbox_table.c.published_at.is_(None)))


async def test_rolled_back_transaction_publishes_nothing(messaging_db, kafka_settings):
    kept, dropped = order_event("kept"), order_event("dropped")
    with pytest.raises(RuntimeError):
        async with messaging_db.transaction() as session:
            await add_to_outbox(session, [dropped])
            raise RuntimeError("business rule failed after the outbox row was staged")
    async with messaging_db.transaction() as session:
        await add_to_outbox(session, [kept])
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    relay = OutboxRelay(messaging_db, publisher, service="test")
    await relay.drain()
    events = await read_events(kafka_settings, "logistics.orders", count=2, timeout_s=3)
    await publisher.stop()
    assert [e.event_id for e in events] == [kept.event_id]


async def test_relay_publishes_each_key_in_write_order(messaging_db, kafka_settings):
    envelopes = [order_event(f"o{i}", customer_id=f"c{i % 4}") for i in range(200)]
    async with messaging_db.transaction() as session:
        await add_to_outbox(session, envelopes)
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    relay = OutboxRelay(messaging_db, publisher, service="test", batch_size=64)
    await relay.drain()
    assert await _pending(messaging_db) == 0
    events = await read_events(kafka_settings, "logistics.orders", count=200)
    await publisher.stop()
    for key in ("c0", "c1", "c2", "c3"):
        written = [e.event_id for e in envelopes if e.key == key]
        received = [e.event_id for e in events if e.key == key]
        assert received == written


async def test_outbox_survives_a_paused_broker(messaging_db, kafka_settings, local_broker):
    if local_broker is None:
        pytest.skip("needs the broker this session started")
    publisher = KafkaPublisher(kafka_settings, client_id="test", request_timeout_ms=3000)
    relay = OutboxRelay(messaging_db, publisher, service="test", poll_interval_s=0.05, max_backoff_s=0.5)
    await publisher.producer()
    task = asyncio.create_task(relay.run())
    local_broker.pause()
    try:
        written = []
        for i in range(20):
            envelope = order_event(f"p{i}", customer_id="c-paused")
            async with messaging_db.transaction() as session:  # the write is acknowledged while the broker sleeps
                await add_to_outbox(session, [envelope])
            written.append(envelope.event_id)
            relay.wake()
        await asyncio.sleep(1.0)
        assert await _pending(messaging_db) > 0
    finally:
        local_broker.resume()
    await wait_until(lambda: _is_zero(_pending(messaging_db)), timeout_s=30)
    relay.stop()
    await asyncio.wait_for(task, 10)
    events = await read_events(kafka_settings, "logistics.orders", count=20, predicate=lambda e: e.key == "c-paused")
    await publisher.stop()
    received = list(dict.fromkeys(e.event_id for e in events))  # a retried send may duplicate, never lose or reorder
    assert received == written


async def _is_zero(awaitable):
    return (await awaitable) == 0


def _delivery(envelope, offset):
    return Delivery("logistics.orders", 0, offset, envelope.key.encode(), encode_envelope(envelope))


async def test_same_event_twice_changes_state_once(messaging_db):
    processor = InboxProcessor(messaging_db, RecordingHandler(), CollectingDeadLetters())
    event = order_event("dup")
    await processor.process([_delivery(event, 0), _delivery(event, 1)])  # twice in one batch
    await processor.process([_delivery(event, 2)])  # and again later
    assert await applied_count(messaging_db) == 1


async def test_failing_event_goes_to_dlq_after_k_attempts_and_others_flow(messaging_db):
    handler = RecordingHandler(fail_order_ids={"bad"})
    dead = CollectingDeadLetters()
    processor = InboxProcessor(messaging_db, handler, dead, max_attempts=3, retry_delay_s=0)
    good1, bad, good2 = order_event("g1"), order_event("bad"), order_event("g2")
    await processor.process([_delivery(good1, 0), _delivery(bad, 1), _delivery(good2, 2)])
    assert [r.order_id for r in await applied_rows(messaging_db)] == ["g1", "g2"]
    assert len(dead.sent) == 1
    topic, key, value, headers = dead.sent[0]
    assert topic == "logistics.orders.dlq" and key == "c1" and value == encode_envelope(bad)
    assert headers["dlq.attempts"] == b"3" and b"cannot apply bad" in headers["dlq.error"]
    assert headers["dlq.original_topic"] == b"logistics.orders" and headers["dlq.offset"] == b"1"
    await processor.process([_delivery(bad, 5)])  # a redelivery of a dead letter is not retried again
    assert len(dead.sent) == 1


async def test_schema_invalid_message_goes_to_dlq_at_once(messaging_db):
    handler = RecordingHandler()
    dead = CollectingDeadLetters()
    processor = InboxProcessor(messaging_db, handler, dead, max_attempts=5)
    good = order_event("g")
    poison = Delivery("logistics.orders", 0, 0, b"c1", b'{"type": "OrderCreated", "payload": "oops"}')
    await processor.process([poison, _delivery(good, 1)])
    assert handler.calls == 1 and len(dead.sent) == 1 and dead.sent[0][3]["dlq.attempts"] == b"1"
    assert [r.order_id for r in await applied_rows(messaging_db)] == ["g"]


async def test_poison_message_on_the_real_broker_lands_in_dlq(messaging_db, kafka_settings):
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    await (await publisher.send("logistics.orders", "c1", b"\x00 not an event"))
    await publisher.publish(order_event("after-poison"))
    consumer = InboxConsumer(messaging_db, kafka_settings, RecordingHandler(), publisher, group_id="g-poison")
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(lambda: applied_count(messaging_db), timeout_s=20)
        dead = await read_raw(kafka_settings, "logistics.orders.dlq", count=1)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)
        await publisher.stop()
    assert dead[0].value == b"\x00 not an event"
    headers = dict(dead[0].headers)
    assert headers["dlq.original_topic"] == b"logistics.orders" and b"not a valid event envelope" in headers["dlq.error"]


async def test_dead_letters_are_kept_in_the_database_and_replayed_after_a_fix(messaging_db, kafka_settings):
    from crm_common.dlq import get_dead_letter, list_dead_letters, replay_dead_letters

    handler = RecordingHandler(fail_order_ids={"needs-fix"})
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    broken = order_event("needs-fix")
    await publisher.publish(broken)
    await publisher.publish(order_event("fine"))
    consumer = InboxConsumer(messaging_db, kafka_settings, handler, publisher, group_id="g-replay", max_attempts=2)
    consumer.processor.retry_delay_s = 0
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(lambda: applied_count(messaging_db), timeout_s=20)
        await wait_until(lambda: list_dead_letters(messaging_db), timeout_s=20)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 15)
        await publisher.stop()
    (waiting,) = await list_dead_letters(messaging_db)
    assert waiting["event_id"] == str(broken.event_id) and waiting["consumer"] == "test-recorder" and waiting["attempts"] == 2
    assert waiting["topic"] == "logistics.orders" and "cannot apply needs-fix" in waiting["error"]
    assert (await get_dead_letter(messaging_db, waiting["id"]))["event"]["payload"]["order_id"] == "needs-fix"
    on_topic = await read_raw(kafka_settings, "logistics.orders.dlq", count=1)
    assert on_topic[0].value == encode_envelope(broken)

    runtime = SimpleNamespace(db=messaging_db, consumers=[consumer])
    (still_failing,) = await replay_dead_letters(runtime, [waiting["id"]])
    assert still_failing.outcome == "failed" and await applied_count(messaging_db) == 1  # nothing changed, still waiting
    handler.fail_order_ids.clear()  # the fix is deployed
    (replayed,) = await replay_dead_letters(runtime, [waiting["id"]])
    assert replayed.outcome == "applied"
    (again,) = await replay_dead_letters(runtime, [waiting["id"]])
    assert again.outcome == "not_found"  # a replayed row is not replayed twice
    assert sorted(r.order_id for r in await applied_rows(messaging_db)) == ["fine", "needs-fix"]
    assert await list_dead_letters(messaging_db) == [] and len(await list_dead_letters(messaging_db, state="replayed")) == 1


async def _count_is(db, n):
    return await applied_count(db) == n
