"""The Kafka side: a producer that knows logical topic names, topic creation, and a health probe.

Works with any Kafka-protocol broker. Idempotent and transactional producers are not used:
reliability comes from the outbox (producer side) and the inbox (consumer side).

No client of this platform gets a topic created by asking for it: topics are created on purpose, with their
partition count (`ensure_topics`, the deploy topics job, `crm-broker`). aiokafka's Metadata requests ask the
broker to auto-create every topic they name; a broker that allows it (Apache Kafka's default, Tansu always)
then creates a missing topic with its own default partition count, and a producer that still knows the
intended count sends keys to partitions that do not exist. This module's import makes aiokafka's requests
say no (`allow_auto_topic_creation=False`); a client that cannot see its topic waits for it instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import aiokafka.admin.client
import aiokafka.client
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import OffsetOutOfRangeError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

from crm_common.events.envelope import EventEnvelope, encode_envelope
from crm_common.events.topics import ALL_TOPICS, topic_for
from crm_common.settings import KafkaSettings

log = logging.getLogger(__name__)


class ExplicitTopicsMetadataRequest(MetadataRequest):  # type: ignore[misc]  # aiokafka ships no types
    """aiokafka's Metadata request with topic auto-creation off unless a caller asks for it."""

    def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False):
        super().__init__(topics, allow_auto_topic_creation)


def never_auto_create_topics() -> None:
    """Every aiokafka client in this process (producers, consumers, admin) stops asking for topic auto-creation.

    aiokafka (pinned in requirements/dev.lock) builds its Metadata requests from these two module names and has no
    setting for it; libs/common/tests/test_topic_auto_creation.py breaks if that moves.
    """
    aiokafka.client.MetadataRequest = ExplicitTopicsMetadataRequest
    aiokafka.admin.client.MetadataRequest = ExplicitTopicsMetadataRequest


never_auto_create_topics()


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

    async def send(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
        """Queue the record; the future resolves to its RecordMetadata when the broker acknowledges it."""
        producer = await self.producer()
        delivery: asyncio.Future[Any] = await producer.send(self.kafka.physical(topic), value=value, key=key.encode(), headers=headers)
        return delivery

    async def publish(self, envelope: EventEnvelope, topic: str | None = None) -> Any:
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


class TopicsMissing(RuntimeError):
    """The broker does not have topics a client needs (yet): wait for whoever creates them, do not create them."""


class BrokerProbe:
    """What the cluster holds now: its id and partitions' end offsets (Metadata and ListOffsets, any Kafka).

    A relay and a consumer compare these with what they published or consumed to notice a broker that
    lost data: a new cluster id (a memory-only broker restarted, a cluster rebuilt), or a partition
    whose end is below an offset that was acknowledged (unclean leader election, a topic deleted).
    `async with BrokerProbe(kafka) as probe:` opens its clients for one check.
    """

    def __init__(self, kafka: KafkaSettings, *, request_timeout_ms: int = 10000):
        self.kafka = kafka
        self.request_timeout_ms = request_timeout_ms
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> BrokerProbe:
        self._admin = AIOKafkaAdminClient(
            **self.kafka.client_options(), client_id=f"{self.kafka.client_id_prefix}-probe", request_timeout_ms=self.request_timeout_ms
        )
        try:
            await self._admin.start()
        except BaseException:
            await self._admin.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._offsets is not None:
            await self._offsets.stop()
        if self._admin is not None:
            await self._admin.close()

    def _started_admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            raise RuntimeError("BrokerProbe is used inside `async with BrokerProbe(kafka) as probe:`")
        return self._admin

    async def cluster_id(self) -> str | None:
        """None from a broker too old to say (Metadata v2 and later carry it)."""
        cluster_id: str | None = (await self._started_admin().describe_cluster()).get("cluster_id")
        return cluster_id

    async def missing_topics(self, topics: Iterable[str]) -> set[str]:
        """Which of these logical topics the broker does not have (yet): after it lost everything, until they are created."""
        wanted = sorted(set(topics))
        if not wanted:
            return set()
        described = await self._started_admin().describe_topics([self.kafka.physical(t) for t in wanted])
        present = {self.kafka.logical(t["topic"]) for t in described if t["error_code"] == 0 and t["partitions"]}
        return set(wanted) - present

    async def end_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offset of each (logical topic, partition) that exists; a missing topic or partition is left out."""
        wanted = set(partitions)
        if not wanted:
            return {}
        physical = sorted({self.kafka.physical(topic) for topic, _ in wanted})
        existing = {
            (self.kafka.logical(t["topic"]), p["partition"])
            for t in await self._started_admin().describe_topics(physical)
            if t["error_code"] == 0
            for p in t["partitions"]
        }
        present = [TopicPartition(self.kafka.physical(topic), partition) for topic, partition in sorted(wanted & existing)]
        if not present:
            return {}
        ends = await (await self._reader()).end_offsets(present)
        return {(self.kafka.logical(tp.topic), tp.partition): offset for tp, offset in ends.items()}

    async def holds(self, records: dict[tuple[str, int], int], timeout_s: float = 5.0) -> set[tuple[str, int]]:
        """Which of these (logical topic, partition) -> offset records the broker can still serve, by fetching them.

        The confirmation of an end offset below a mark: some brokers answer ListOffsets with less than they
        hold (Tansu's memory engine answers the last batch's base offset + 1), while a fetch of the record
        itself, and the high watermark in its answer, are right everywhere. A record past the end is
        OffsetOutOfRange on Apache Kafka and an empty answer on Tansu: not held either way.
        """
        reader = await self._reader()
        wanted = {TopicPartition(self.kafka.physical(topic), partition): offset for (topic, partition), offset in records.items()}
        reader.assign(list(wanted))
        for tp, offset in wanted.items():
            reader.seek(tp, offset)
        held: set[TopicPartition] = set()
        deadline = asyncio.get_running_loop().time() + timeout_s
        waiting = set(wanted)
        while waiting and asyncio.get_running_loop().time() < deadline:
            try:
                batches = await reader.getmany(*waiting, timeout_ms=200)
            except OffsetOutOfRangeError as exc:
                waiting -= set(exc.args[0] if exc.args and isinstance(exc.args[0], dict) else waiting)
                continue
            for tp in list(waiting):
                highwater = reader.highwater(tp)
                if any(r.offset >= wanted[tp] for r in batches.get(tp, ())) or (highwater is not None and highwater > wanted[tp]):
                    held.add(tp)
                    waiting.discard(tp)
                elif highwater is not None:  # answered, and the record is past its end
                    waiting.discard(tp)
        return {(self.kafka.logical(tp.topic), tp.partition) for tp in held}

    async def _reader(self) -> AIOKafkaConsumer:
        if self._offsets is None:
            self._offsets = AIOKafkaConsumer(
                **self.kafka.client_options(),
                client_id=f"{self.kafka.client_id_prefix}-probe",
                enable_auto_commit=False,
                auto_offset_reset="none",
                request_timeout_ms=self.request_timeout_ms,
                max_partition_fetch_bytes=64 * 1024,
            )
            await self._offsets.start()
        return self._offsets
