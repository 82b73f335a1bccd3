"""ServiceRuntime.stop (what SIGTERM/SIGINT runs through uvicorn's lifespan or run_worker): the consumer finishes and
commits the batch in hand, the relay publishes what was committed since its last pass, then everything closes."""

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from common_support import RecordingHandler, applied_rows, order_event

from crm_common.bus import KafkaPublisher
from crm_common.events import encode_envelope
from crm_common.outbox import add_to_outbox, outbox_table
from crm_common.runtime import ServiceRuntime
from crm_common.settings import ServiceSettings
from crm_devbroker.testing import read_events


class SlowRecorder(RecordingHandler):
    """Takes its time over a batch, so that the stop arrives while the batch is in hand."""

    name = "graceful-recorder"

    def __init__(self):
        super().__init__()
        self.batch_started = asyncio.Event()
        self.first_batch: list[str] = []

    async def handle_batch(self, session, events):
        if not self.batch_started.is_set():
            self.first_batch = [str(e.envelope.event_id) for e in events]
            self.batch_started.set()
        await asyncio.sleep(1.0)
        for event in events:
            await self.handle(session, event)


async def _committed(kafka, group_id: str, topic: str) -> int:
    """The sum of the group's committed offsets over the topic's partitions."""
    reader = AIOKafkaConsumer(**kafka.client_options(), group_id=group_id, enable_auto_commit=False)
    await reader.start()
    try:
        physical = kafka.physical(topic)
        partitions = [TopicPartition(physical, p) for p in sorted(reader.partitions_for_topic(physical) or [])]
        return sum([await reader.committed(tp) or 0 for tp in partitions])
    finally:
        await reader.stop()


async def test_stop_lets_the_consumer_commit_its_batch_and_the_relay_flush(messaging_db, kafka_settings):
    events = [order_event(f"g{i}", customer_id=f"c{i % 3}") for i in range(20)]
    publisher = KafkaPublisher(kafka_settings, client_id="graceful-test")
    await asyncio.gather(*[await publisher.send("logistics.orders", e.key, encode_envelope(e)) for e in events])
    await publisher.stop()

    handler = SlowRecorder()
    settings = ServiceSettings(service_name="graceful", database_url=messaging_db.url, kafka=kafka_settings, outbox_poll_interval_s=5.0)
    runtime = ServiceRuntime(settings, handlers=[handler])
    await runtime.start()
    await asyncio.wait_for(handler.batch_started.wait(), 60)
    late = order_event("staged-after-the-relay-last-looked")
    async with messaging_db.transaction() as session:  # committed while the relay sleeps (5 s poll): only the flush sends it
        await add_to_outbox(session, [late])
    await runtime.stop()

    applied = await applied_rows(messaging_db)
    assert set(handler.first_batch) <= {r.event_id for r in applied}, "the batch in hand was cancelled instead of finished"
    committed = await _committed(kafka_settings, handler.name, "logistics.orders")
    assert committed == len(applied) and len({r.event_id for r in applied}) == len(applied)  # committed what it applied, once
    published = await read_events(kafka_settings, "logistics.orders", count=len(events) + 1, timeout_s=30)
    assert str(late.event_id) in {str(e.event_id) for e in published}
    async with messaging_db.sessions() as session:
        assert (await session.execute(outbox_table.select().where(outbox_table.c.published_at.is_(None)))).all() == []
