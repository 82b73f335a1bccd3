"""No client of the platform gets a topic created by asking for it (crm_common.bus): a broker restarted empty
(Tansu always auto-creates, with 4 partitions) must get its topics from `ensure_topics`, with their partition
count, or a producer that knew the intended count sends keys to partitions that do not exist."""

import asyncio
import os
import signal
import uuid

import pytest
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError
from common_support import RecordingHandler, applied_rows, order_event
from sqlalchemy import func, insert, select, update

from crm_common.bus import BrokerProbe, KafkaPublisher, TopicsMissing, ensure_topics
from crm_common.consumer import InboxConsumer
from crm_common.db import utcnow
from crm_common.events.topics import ALL_TOPICS
from crm_common.outbox import OutboxRelay, add_to_outbox, outbox_table, relay_marks_table
from crm_common.settings import KafkaSettings
from crm_devbroker.broker import LocalBroker
from crm_devbroker.testing import RefusingDeadLetters, wait_until


def _uncreated(kafka_settings):
    """The same broker, a topic prefix nobody created topics for."""
    return kafka_settings.model_copy(update={"topic_prefix": f"u{uuid.uuid4().hex[:8]}."})


async def _missing(kafka, topics=("logistics.orders",)) -> set[str]:
    async with BrokerProbe(kafka) as probe:
        return await probe.missing_topics(topics)


def _started(consumer):
    async def started() -> bool:
        return consumer.started.is_set()

    return started


async def _partitions(kafka, topic: str) -> int:
    async with BrokerProbe(kafka) as probe:
        described = await probe._admin.describe_topics([kafka.physical(topic)])
    return len(described[0]["partitions"])


async def test_a_producer_waits_for_its_topic_instead_of_creating_it(kafka_settings):
    kafka = _uncreated(kafka_settings)
    publisher = KafkaPublisher(kafka, client_id="test", request_timeout_ms=2000)
    try:
        with pytest.raises((KafkaTimeoutError, UnknownTopicOrPartitionError)):  # no metadata for the topic within the timeout
            await publisher.publish(order_event("o1"))
        assert await _missing(kafka) == {"logistics.orders"}

        await ensure_topics(kafka, ALL_TOPICS, partitions=5)
        delivered = await publisher.publish(order_event("o2"))
        assert delivered.offset == 0
        assert await _partitions(kafka, "logistics.orders") == 5
    finally:
        await publisher.stop()


@pytest.mark.parametrize("db_kind", ["sqlite"])
async def test_a_consumer_waits_for_its_topics_and_reads_them_once_created(messaging_db, kafka_settings):
    kafka = _uncreated(kafka_settings)
    consumer = InboxConsumer(messaging_db, kafka, RecordingHandler(), RefusingDeadLetters(), group_id="g-uncreated")
    task = asyncio.create_task(consumer.run())
    publisher = KafkaPublisher(kafka, client_id="test")
    try:
        await asyncio.sleep(2)
        assert not consumer.started.is_set()
        assert await _missing(kafka) == {"logistics.orders"}

        await ensure_topics(kafka, ALL_TOPICS, partitions=2)
        await wait_until(_started(consumer), timeout_s=30)
        assert await _partitions(kafka, "logistics.orders") == 2
        event = order_event("o1")
        await publisher.publish(event)
        await wait_until(lambda: _applied(messaging_db, event), timeout_s=60)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 30)
        await publisher.stop()


@pytest.mark.parametrize("db_kind", ["sqlite"])
async def test_a_consumer_that_rejoined_while_its_topic_was_gone_reads_it_once_it_is_created_again(messaging_db):
    """The broker loses the topic (restarted empty here; on Kafka a topic deleted) and the consumer's aiokafka refreshes
    its metadata and rejoins before the topic is created again: the group's leader assigns nothing. Once the topic
    exists the consumer reads it, within seconds: aiokafka alone asks for its metadata again only 5 minutes later.
    The consumer's own broker check is out of the picture (once an hour), as it is when the cluster id stays the same."""
    with LocalBroker() as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_prefix="t.", topic_partitions=3, consumer_session_timeout_ms=3000)
        await ensure_topics(kafka, ALL_TOPICS)
        consumer = InboxConsumer(
            messaging_db, kafka, RecordingHandler(), RefusingDeadLetters(), group_id="g-gone", broker_check_interval_s=3600
        )
        task = asyncio.create_task(consumer.run())
        publisher = KafkaPublisher(kafka, client_id="test")
        try:
            before = order_event("before")
            await publisher.publish(before)
            await wait_until(lambda: _applied(messaging_db, before), timeout_s=60)

            os.kill(broker.process.pid, signal.SIGKILL)
            broker.process.wait()
            broker.start()  # empty: no topic, no group
            await wait_until(lambda: _holds_a_generation_without(consumer, kafka.physical("logistics.orders")), timeout_s=60)
            await ensure_topics(kafka, ALL_TOPICS)
            after = order_event("after")
            await publisher.publish(after)
            await wait_until(lambda: _applied(messaging_db, after), timeout_s=30)
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 30)
            await publisher.stop()


async def _holds_a_generation_without(consumer: InboxConsumer, physical: str) -> bool:
    """The consumer's group completed a generation on the new broker with nothing of the topic it has no metadata of."""
    kafka_consumer = consumer._consumer
    return bool(
        consumer.joined
        and kafka_consumer is not None
        and not kafka_consumer.assignment()
        and not kafka_consumer.partitions_for_topic(physical)
    )


@pytest.mark.parametrize("db_kind", ["sqlite"])
async def test_a_relay_puts_back_what_a_lost_broker_held_only_once_the_topics_exist_again(messaging_db, kafka_settings):
    """Rows published to another cluster; this broker does not have their topic: nothing goes back until it does."""
    kafka = _uncreated(kafka_settings)
    publisher = KafkaPublisher(kafka, client_id="test")
    relay = OutboxRelay(messaging_db, publisher, service="test")
    async with messaging_db.transaction() as session:
        await add_to_outbox(session, [order_event(f"o{i}") for i in range(3)])
        await session.execute(update(outbox_table).values(published_at=utcnow()))
        await session.execute(
            insert(relay_marks_table).values(
                topic="logistics.orders", partition=0, cluster_id="elsewhere", next_offset=3, updated_at=utcnow()
            )
        )
    try:
        with pytest.raises(TopicsMissing):
            await relay.check_broker()
        assert await _pending(messaging_db) == 0
        assert await _missing(kafka) == {"logistics.orders"}

        await ensure_topics(kafka, ALL_TOPICS)
        assert await relay.check_broker() == 3
        assert await relay.publish_pending() == 3
    finally:
        await publisher.stop()


async def _pending(db) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).where(outbox_table.c.published_at.is_(None)))


async def _applied(db, event) -> bool:
    return str(event.event_id) in {r.event_id for r in await applied_rows(db)}
