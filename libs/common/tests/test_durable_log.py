"""The outbox as the durable log: a broker that comes back empty is refilled from it, consumers apply each
event once; the retention purge; the replay of a time range. Against the real broker, on both databases."""

import asyncio
import datetime as dt
import os
import signal
import uuid

import orjson
import pytest
from common_support import RecordingHandler, applied_rows, order_event
from sqlalchemy import func, select, update

from crm_common.bus import KafkaPublisher, ensure_topics
from crm_common.consumer import InboxConsumer
from crm_common.db import utcnow
from crm_common.events.topics import ALL_TOPICS
from crm_common.outbox import OutboxRelay, add_to_outbox, outbox_table, purge_published, relay_marks_table
from crm_common.outbox_replay import parse_moment, replay_outbox
from crm_devbroker.testing import RefusingDeadLetters, read_events, read_raw, wait_until

FAST = dict(poll_interval_s=0.05, max_backoff_s=0.5, broker_check_interval_s=0.5)


def _needs_own_broker(local_broker):
    if local_broker is None:
        pytest.skip("needs the broker this session started (it is stopped and started empty)")


async def _write(db, envelopes):
    async with db.transaction() as session:
        await add_to_outbox(session, envelopes)


async def _pending(db) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).where(outbox_table.c.published_at.is_(None)))


async def _applied_once_each(db, expected_ids) -> bool:
    """True when every expected event is applied and nothing twice (the business table counts applies)."""
    ids = [r.event_id for r in await applied_rows(db)]
    assert len(ids) == len(set(ids)), f"applied twice: {sorted(i for i in set(ids) if ids.count(i) > 1)}"
    return set(ids) == {str(i) for i in expected_ids}


async def _restart_empty(local_broker, kafka_settings, *, kill: bool = False) -> None:
    """The broker dies (SIGKILL or stop) and comes back on the same port with nothing: no topics, no groups."""
    if kill:
        os.kill(local_broker.process.pid, signal.SIGKILL)
        local_broker.process.wait()
        local_broker.process = None
    else:
        local_broker.stop()
    local_broker.start()
    await ensure_topics(kafka_settings, ALL_TOPICS)


class Running:
    """A relay and a consumer of the recording handler, as a service runs them."""

    def __init__(self, db, kafka_settings):
        self.publisher = KafkaPublisher(kafka_settings, client_id="test", request_timeout_ms=5000)
        self.relay = OutboxRelay(db, self.publisher, service="test", **FAST)
        self.consumer = InboxConsumer(
            db, kafka_settings, RecordingHandler(), RefusingDeadLetters(), group_id="g-durable", broker_check_interval_s=0.5
        )
        self.tasks = [asyncio.create_task(self.relay.run()), asyncio.create_task(self.consumer.run())]

    async def stop(self):
        self.relay.stop()
        self.consumer.stop()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 30)
        await self.publisher.stop()


@pytest.mark.parametrize("db_kind", ["postgres", pytest.param("sqlite", marks=pytest.mark.slow)])  # about 15 s each: one in make test
async def test_relay_republishes_to_a_broker_restarted_empty_and_each_event_is_applied_once(messaging_db, kafka_settings, local_broker):
    _needs_own_broker(local_broker)
    before = [order_event(f"before-{i}", customer_id=f"c{i % 3}") for i in range(30)]
    after = [order_event(f"after-{i}", customer_id=f"c{i % 3}") for i in range(10)]
    running = Running(messaging_db, kafka_settings)
    try:
        await _write(messaging_db, before)
        running.relay.wake()
        await wait_until(lambda: _applied_once_each(messaging_db, [e.event_id for e in before]), timeout_s=60)
        old_cluster = running.relay.cluster_id

        await _restart_empty(local_broker, kafka_settings)
        assert local_broker.cluster_id != old_cluster
        await _write(messaging_db, after)
        running.relay.wake()
        everything = [e.event_id for e in before + after]
        await wait_until(lambda: _applied_once_each(messaging_db, everything), timeout_s=90)
        await wait_until(lambda: _zero(_pending(messaging_db)), timeout_s=30)
        assert running.relay.cluster_id not in (None, old_cluster)
        events = await read_events(kafka_settings, "logistics.orders", count=len(everything), timeout_s=30)
    finally:
        await running.stop()
    for key in ("c0", "c1", "c2"):  # the new broker holds the whole retained log again, each key in write order
        written = [e.event_id for e in before + after if e.key == key]
        received = list(dict.fromkeys(e.event_id for e in events if e.key == key))
        assert received == written


@pytest.mark.slow
async def test_broker_killed_mid_stream_and_restarted_empty_loses_nothing_and_applies_nothing_twice(
    messaging_db, kafka_settings, local_broker
):
    _needs_own_broker(local_broker)
    written = []
    running = Running(messaging_db, kafka_settings)
    try:
        for round_ in range(3):
            for i in range(100):  # a client keeps writing; the broker is killed in the middle of each round
                envelope = order_event(f"r{round_}-{i}", customer_id=f"c{i % 7}")
                await _write(messaging_db, [envelope])
                written.append(envelope.event_id)
                running.relay.wake()
                if i == 50:
                    await _restart_empty(local_broker, kafka_settings, kill=True)
                await asyncio.sleep(0.01)
        await wait_until(lambda: _applied_once_each(messaging_db, written), timeout_s=180, interval_s=0.5)
    finally:
        await running.stop()
    rows = await applied_rows(messaging_db)
    print(
        f"sent {len(written)}, applied {len(rows)}, lost {len(set(map(str, written)) - {r.event_id for r in rows})}, "
        f"applied twice {len(rows) - len({r.event_id for r in rows})}"
    )


async def _zero(awaitable):
    return await awaitable == 0


async def test_a_partition_end_below_the_mark_counts_as_lost(messaging_db, kafka_settings):
    """Apache Kafka after an unclean leader election: the same cluster, a partition shorter than acknowledged."""
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    relay = OutboxRelay(messaging_db, publisher, service="test")
    try:
        await _write(messaging_db, [order_event(f"o{i}") for i in range(5)])
        await relay.drain()
        assert await relay.check_broker() == 0  # nothing lost: nothing goes again
        async with messaging_db.transaction() as session:
            await session.execute(update(relay_marks_table).values(next_offset=relay_marks_table.c.next_offset + 3))
        assert await relay.check_broker() == 5
        assert await _pending(messaging_db) == 5
        await relay.drain()
    finally:
        await publisher.stop()
    async with messaging_db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(relay_marks_table)) >= 1


async def _age(db, order_ids_by_age: dict[str, dt.timedelta]):
    """Backdate rows: the event with order_id X was written `age` ago."""
    async with db.transaction() as session:
        for order_id, age in order_ids_by_age.items():
            await session.execute(
                update(outbox_table).where(outbox_table.c.body.contains(f'"order_id":"{order_id}"')).values(created_at=utcnow() - age)
            )


async def test_purge_removes_published_rows_older_than_the_retention_only(messaging_db, kafka_settings):
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    try:
        await _write(messaging_db, [order_event("old"), order_event("recent"), order_event("old-but-pending")])
        await _age(messaging_db, {"old": dt.timedelta(days=8), "recent": dt.timedelta(days=6)})
        await OutboxRelay(messaging_db, publisher, service="test").drain()
    finally:
        await publisher.stop()
    await _write(messaging_db, [order_event("unsent")])
    await _age(messaging_db, {"old-but-pending": dt.timedelta(days=9), "unsent": dt.timedelta(days=9)})
    async with messaging_db.transaction() as session:  # a row the relay could not publish yet stays, however old
        await session.execute(update(outbox_table).where(outbox_table.c.body.contains('"order_id":"unsent"')).values(published_at=None))
    assert await purge_published(messaging_db, dt.timedelta(days=7), chunk=1) == 2
    async with messaging_db.sessions() as session:
        bodies = (await session.execute(select(outbox_table.c.body))).scalars().all()
    assert sorted(b.split('"order_id":"')[1].split('"')[0] for b in bodies) == ["recent", "unsent"]


async def test_replay_publishes_the_rows_of_a_time_range_and_topic_again_in_order(messaging_db, kafka_settings):
    ages = {f"o{i}": dt.timedelta(hours=10 - i) for i in range(10)}  # o0 ten hours ago ... o9 one hour ago
    envelopes = [order_event(order_id, customer_id=f"c{i % 2}") for i, order_id in enumerate(ages)]
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    try:
        await _write(messaging_db, envelopes)
        await _age(messaging_db, ages)
        await OutboxRelay(messaging_db, publisher, service="test").drain()
        first = await read_events(kafka_settings, "logistics.orders", count=10)
        assert len(first) == 10
        counts = await replay_outbox(
            messaging_db, publisher, since=parse_moment("510m"), until=utcnow() - dt.timedelta(hours=3.5), topic="logistics.orders"
        )
        assert await replay_outbox(messaging_db, publisher, since=parse_moment("1d"), topic="crm.customers") == {}
    finally:
        await publisher.stop()
    assert counts == {"logistics.orders": 5}  # o2 (8 h ago) .. o6 (4 h ago)
    events = await read_events(kafka_settings, "logistics.orders", count=15)
    seen: dict[str, list[str]] = {}
    for event in events:
        seen.setdefault(event.key, []).append(event.payload["order_id"])
    assert seen == {"c0": ["o0", "o2", "o4", "o6", "o8", "o2", "o4", "o6"], "c1": ["o1", "o3", "o5", "o7", "o9", "o3", "o5"]}


async def test_republished_and_replayed_events_carry_their_trace_as_the_kafka_header(messaging_db, kafka_settings):
    """An event sent again, by the relay after the broker lost it or by `crm-outbox replay`, has the Kafka header
    `traceparent` of the trace it was staged in (the envelope's), also from a process that does not trace itself, so a
    reader of the header alone stays in that trace; an event staged without a trace goes without the header."""
    staged_in = {f"t{i}": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01" for i in range(3)}
    traced = [order_event(order_id).model_copy(update={"traceparent": tp}) for order_id, tp in staged_in.items()]
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    relay = OutboxRelay(messaging_db, publisher, service="test")  # tracing off here: no publish span of its own
    try:
        await _write(messaging_db, [*traced, order_event("untraced")])
        await relay.drain()
        async with messaging_db.transaction() as session:  # the broker lost what it acknowledged
            await session.execute(update(relay_marks_table).values(next_offset=relay_marks_table.c.next_offset + 4))
        assert await relay.check_broker() == 4
        await relay.drain()
        assert await replay_outbox(messaging_db, publisher, since=parse_moment("1h")) == {"logistics.orders": 4}
    finally:
        await publisher.stop()
    records = await read_raw(kafka_settings, "logistics.orders", count=12)
    sent: dict[str, list[bytes | None]] = {}
    for record in records:
        sent.setdefault(orjson.loads(record.value)["payload"]["order_id"], []).append(dict(record.headers or ()).get("traceparent"))
    assert sent == {**{order_id: [tp.encode()] * 3 for order_id, tp in staged_in.items()}, "untraced": [None] * 3}


def test_replay_moments_are_unambiguous():
    now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
    assert parse_moment("6h", now) == dt.datetime(2026, 12, 7, 6, tzinfo=dt.UTC)
    assert parse_moment("2026-12-07T08:00:00+08:00") == dt.datetime(2026, 12, 7, 0, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_moment("2026-12-07T08:00:00")
    with pytest.raises(ValueError, match="neither"):
        parse_moment("yesterday")


async def test_a_group_whose_committed_offset_is_beyond_the_end_starts_from_the_earliest(messaging_db, kafka_settings):
    """A broker that lost records but not the group's offsets (Kafka after an unclean election; Tansu answers a
    fetch past the end with nothing at all, so without the rewind the consumer would wait there forever)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    publisher = KafkaPublisher(kafka_settings, client_id="test")
    group = f"g-beyond-{kafka_settings.topic_prefix}"  # a group of its own: the broker refuses this commit into a live group
    events = [order_event(f"o{i}", customer_id="c-beyond") for i in range(5)]
    try:
        acknowledged = [await publisher.publish(e) for e in events]
        tp = TopicPartition(kafka_settings.physical("logistics.orders"), acknowledged[0].partition)
        committer = AIOKafkaConsumer(**kafka_settings.client_options(), group_id=group, enable_auto_commit=False)
        await committer.start()
        try:
            committer.assign([tp])
            await committer.commit({tp: 100})  # what the group had reached before the broker lost the records
        finally:
            await committer.stop()
        consumer = InboxConsumer(messaging_db, kafka_settings, RecordingHandler(), RefusingDeadLetters(), group_id=group)
        task = asyncio.create_task(consumer.run())
        try:
            await wait_until(lambda: _applied_once_each(messaging_db, [e.event_id for e in events]), timeout_s=30)
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 15)
    finally:
        await publisher.stop()
