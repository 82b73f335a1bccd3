"""The Kafka side: a producer that knows logical topic names, topic creation, and a health probe.

Works with any Kafka-protocol broker. Idempotent and transactional producers are not used:
reliability comes from the outbox (producer side) and the inbox (consumer side).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from crm_common.events.envelope import EventEnvelope, encode_envelope
from crm_common.events.topics import ALL_TOPICS, topic_for
from crm_common.settings import KafkaSettings

log = logging.getLogger(__name__)


class KafkaPublisher:
    """A started-on-demand producer. `send` returns the delivery future once the record is queued."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str, request_timeout_ms: int = 15000, linger_ms: int = 5):
        self.kafka = kafka
        self.client_id = client_id
        self.request_timeout_ms = request_timeout_ms
        self.linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            async with self._lock:
                if self._producer is None:
                    producer = AIOKafkaProducer(
                        **self.kafka.client_options(),
                        client_id=f"{self.kafka.client_id_prefix}-{self.client_id}",
                        acks="all",
                        enable_idempotence=False,
                        linger_ms=self.linger_ms,
                        request_timeout_ms=self.request_timeout_ms,
                        max_batch_size=256 * 1024,
                    )
                    try:
                        await producer.start()
                    except Exception:
                        await producer.stop()
                        raise
                    self._producer = producer
        return self._producer

    async def send(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]] | None = None):
        producer = await self.producer()
        return await producer.send(self.kafka.physical(topic), value=value, key=key.encode(), headers=headers)

    async def publish(self, envelope: EventEnvelope, topic: str | None = None):
        """Publish now and wait for the broker's acknowledgement (tools and tests; services use the outbox)."""
        future = await self.send(topic or topic_for(envelope.type), envelope.key, encode_envelope(envelope))
        return await future

    async def ready(self, timeout_s: float = 2.0) -> bool:
        try:
            producer = await asyncio.wait_for(self.producer(), timeout_s)
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout_s)
            return True
        except Exception:
            return False

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()


async def ensure_topics(kafka: KafkaSettings, topics: Iterable[str] = ALL_TOPICS, partitions: int | None = None) -> None:
    """Create the topics with an explicit partition count before any client asks for their metadata."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), client_id=f"{kafka.client_id_prefix}-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [kafka.physical(t) for t in topics]
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        new_topics = [
            NewTopic(t, num_partitions=partitions or kafka.topic_partitions, replication_factor=kafka.topic_replication_factor)
            for t in missing
        ]
        try:
            await admin.create_topics(new_topics)
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()
