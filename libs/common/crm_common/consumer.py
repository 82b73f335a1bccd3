"""Idempotent consumer (inbox): apply an event and record its id in one transaction.

Offsets are committed only after that transaction commits: at-least-once delivery,
exactly-once effect. A message whose handler keeps failing goes, after `max_attempts`,
to `<topic>.dlq` with its error and origin; a schema-invalid one goes there at once.
The partition keeps flowing either way.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import Column, PrimaryKeyConstraint, String, Table, delete
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.context import correlation_id_var
from crm_common.db import Database, UTCDateTime, utcnow
from crm_common.events.envelope import EventEnvelope, EventPayload, InvalidEvent, decode_envelope
from crm_common.events.topics import dlq_topic
from crm_common.group_repair import release_departed_leader
from crm_common.metrics import CONSUMER_LAG, DLQ_MESSAGES, EVENTS_CONSUMED
from crm_common.outbox import messaging_metadata
from crm_common.settings import KafkaSettings

log = logging.getLogger(__name__)

inbox_table = Table(
    "inbox",
    messaging_metadata,
    Column("consumer", String(100), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("processed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
)


_CLAIM_POSTGRESQL = (
    "INSERT INTO inbox (consumer, event_id, event_type, outcome, processed_at) "
    "SELECT $1, e, t, $4, $5 FROM unnest($2::varchar[], $3::varchar[]) AS u(e, t) ON CONFLICT DO NOTHING RETURNING event_id"
)


@dataclass(frozen=True)
class Delivery:
    """One Kafka record as the consumer sees it (decoupled from aiokafka for tests and tools)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


REPLAY_HEADER = "dlq.replay"


def is_replay(delivery: Delivery) -> bool:
    return any(name == REPLAY_HEADER for name, _ in delivery.headers)


@dataclass(frozen=True)
class Event:
    envelope: EventEnvelope
    payload: EventPayload
    delivery: Delivery


class EventHandler(Protocol):
    """What a service implements. `handle_batch`, when present, is used for whole batches."""

    name: str
    topics: tuple[str, ...]
    event_types: frozenset[str] | None

    async def handle(self, session: AsyncSession, event: Event) -> None: ...


class DeadLetterWriter(Protocol):
    async def send(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> Any: ...


class InboxProcessor:
    """The broker-independent core: turns deliveries into applied events, inbox rows and dead letters."""

    def __init__(self, db: Database, handler: EventHandler, dead_letters: DeadLetterWriter, *, max_attempts: int = 5, retry_delay_s: float = 0.1):
        self.db = db
        self.handler = handler
        self.dead_letters = dead_letters
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self.logical_topic = lambda topic: topic

    async def process(self, deliveries: list[Delivery]) -> None:
        """Apply a batch (one poll, one or more partitions). Raises only when a dead letter could not be written."""
        events: list[Event] = []
        for delivery in deliveries:
            try:
                envelope = decode_envelope(delivery.value)
            except InvalidEvent as exc:
                await self._dead_letter(delivery, exc, attempts=1, event=None)
                continue
            if self.handler.event_types is not None and envelope.type not in self.handler.event_types:
                EVENTS_CONSUMED.labels(self.handler.name, "ignored").inc()
                continue
            events.append(Event(envelope, envelope.parsed(), delivery))
        if not events:
            return
        try:
            await self._apply(events)
        except Exception:
            log.warning("batch of %d failed; applying one by one", len(events), exc_info=True)
            for event in events:
                await self._apply_with_retries(event)

    async def _apply(self, events: list[Event]) -> None:
        async with self.db.transaction() as session:
            fresh = await self._claim(session, events, "applied")
            if fresh:
                handle_batch = getattr(self.handler, "handle_batch", None)
                if handle_batch is not None:
                    await handle_batch(session, fresh)
                else:
                    for event in fresh:
                        token = correlation_id_var.set(event.envelope.correlation_id)
                        try:
                            await self.handler.handle(session, event)
                        finally:
                            correlation_id_var.reset(token)
        EVENTS_CONSUMED.labels(self.handler.name, "applied").inc(len(fresh))
        EVENTS_CONSUMED.labels(self.handler.name, "duplicate").inc(len(events) - len(fresh))

    async def _claim(self, session: AsyncSession, events: list[Event], outcome: str) -> list[Event]:
        """Record the events in the inbox; return, in order, those that were not there yet.

        One INSERT ... ON CONFLICT DO NOTHING RETURNING: the rows it returns are the fresh events.
        It commits or rolls back with the caller's transaction, so a failed apply claims nothing.
        """
        await self._release_replayed_dead_letters(session, events)
        now = utcnow()
        rows: dict[str, dict] = {}
        for event in events:
            event_id = str(event.envelope.event_id)
            rows.setdefault(
                event_id,
                {"consumer": self.handler.name, "event_id": event_id, "event_type": event.envelope.type, "outcome": outcome, "processed_at": now},
            )
        if session.bind.dialect.name == "postgresql":  # ids and types as two arrays: one statement text for every batch size
            arrays = ([r["event_id"] for r in rows.values()], [r["event_type"] for r in rows.values()])
            result = await (await session.connection()).exec_driver_sql(_CLAIM_POSTGRESQL, (self.handler.name, *arrays, outcome, now))
            claimed = set(result.scalars())
        else:
            statement = sqlite_insert(inbox_table).on_conflict_do_nothing().returning(inbox_table.c.event_id)
            claimed = set((await session.execute(statement, list(rows.values()))).scalars())
        fresh: list[Event] = []
        for event in events:
            event_id = str(event.envelope.event_id)
            if event_id in claimed:
                claimed.discard(event_id)
                fresh.append(event)
        return fresh

    async def _release_replayed_dead_letters(self, session: AsyncSession, events: list[Event]) -> None:
        """A dead letter replayed on purpose (header dlq.replay) gets another chance."""
        replayed = list({str(e.envelope.event_id) for e in events if is_replay(e.delivery)})
        if replayed:
            await session.execute(
                delete(inbox_table).where(
                    inbox_table.c.consumer == self.handler.name,
                    inbox_table.c.event_id.in_(replayed),
                    inbox_table.c.outcome == "dead_letter",
                )
            )

    async def _apply_with_retries(self, event: Event) -> None:
        error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._apply([event])
                return
            except Exception as exc:
                error = exc
                log.warning("handler %s failed on %s (attempt %d/%d): %s", self.handler.name, event.envelope.event_id, attempt, self.max_attempts, exc)
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.retry_delay_s * attempt)
        await self._dead_letter(event.delivery, error, attempts=self.max_attempts, event=event)

    async def _dead_letter(self, delivery: Delivery, error: Exception | None, *, attempts: int, event: Event | None) -> None:
        topic = self.logical_topic(delivery.topic)
        headers = [
            ("dlq.error", str(error)[:4000].encode()),
            ("dlq.error_type", type(error).__name__.encode()),
            ("dlq.original_topic", topic.encode()),
            ("dlq.partition", str(delivery.partition).encode()),
            ("dlq.offset", str(delivery.offset).encode()),
            ("dlq.attempts", str(attempts).encode()),
            ("dlq.consumer", self.handler.name.encode()),
        ]
        key = delivery.key.decode(errors="replace") if delivery.key else ""
        future = await self.dead_letters.send(dlq_topic(topic), key, delivery.value, headers)
        await future
        DLQ_MESSAGES.labels(self.handler.name, topic).inc()
        log.error("dead-lettered %s[%d]@%d after %d attempt(s): %s", topic, delivery.partition, delivery.offset, attempts, error)
        if event is not None:
            async with self.db.transaction() as session:
                await self._claim(session, [event], "dead_letter")


class GroupJoinStalled(RuntimeError):
    """The consumer's group join did not complete within the watchdog's limit."""


def group_join_complete(consumer: AIOKafkaConsumer) -> bool:
    """True while the member holds a completed generation: aiokafka heartbeats only then.

    Reads aiokafka internals (pinned version; tests/e2e/test_consumer_restart.py breaks if they move).
    """
    coordinator = getattr(consumer, "_coordinator", None)
    return coordinator is not None and getattr(coordinator, "_heartbeat_task", None) is not None


class JoinWatchdog:
    """Notices a group join that never completes, so the consumer can leave and join again.

    Why: on Tansu, when the leader of a generation being formed leaves during the sync phase (a rolling
    restart), the remaining members are answered with that generation and the departed leader forever
    (docs/reliability.md). Joining again with a new member id ends it. On Apache Kafka a join taking this
    long is already broken, so a rejoin costs at most one more rebalance. An idle replica (more replicas
    than partitions) holds a completed generation with no partitions and is left alone.
    """

    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit_s = limit_s
        self.clock = clock
        self._rejoining_since: float | None = None

    def observe(self, joined: bool) -> None:
        """Call between polls; raises GroupJoinStalled once the join has been pending longer than the limit."""
        if joined or self.limit_s <= 0:
            self._rejoining_since = None
            return
        now = self.clock()
        if self._rejoining_since is None:
            self._rejoining_since = now
        elif now - self._rejoining_since > self.limit_s:
            self._rejoining_since = None
            raise GroupJoinStalled(f"group join pending for more than {self.limit_s:.0f}s")


class InboxConsumer:
    """Runs an InboxProcessor against a Kafka consumer group."""

    def __init__(
        self,
        db: Database,
        kafka: KafkaSettings,
        handler: EventHandler,
        dead_letters: DeadLetterWriter,
        *,
        group_id: str | None = None,
        max_attempts: int = 5,
        batch_size: int = 500,
        poll_timeout_ms: int = 200,
    ):
        self.kafka = kafka
        self.handler = handler
        self.group_id = group_id or handler.name
        self.batch_size = batch_size
        self.poll_timeout_ms = poll_timeout_ms
        self.processor = InboxProcessor(db, handler, dead_letters, max_attempts=max_attempts)
        self.processor.logical_topic = kafka.logical
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = False
        self.started = asyncio.Event()
        self.join_restarts = 0  # times the JoinWatchdog made this consumer leave and join again

    def stop(self) -> None:
        self._stopping = True

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            *[self.kafka.physical(t) for t in self.handler.topics],
            **self.kafka.client_options(),
            group_id=self.group_id,
            client_id=f"{self.kafka.client_id_prefix}-{self.handler.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_size,
            session_timeout_ms=self.kafka.consumer_session_timeout_ms,
            heartbeat_interval_ms=self.kafka.consumer_heartbeat_interval_ms,
        )
        join_limit_s = self.kafka.consumer_join_watchdog_s
        try:
            await asyncio.wait_for(consumer.start(), join_limit_s if join_limit_s > 0 else None)
        except TimeoutError:
            await asyncio.shield(consumer.stop())
            raise GroupJoinStalled(f"first group join took more than {join_limit_s:.0f}s") from None
        except BaseException:  # cancelled or failed while joining: leave the group, or it keeps our partitions
            await asyncio.shield(consumer.stop())
            raise
        return consumer

    async def run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                self._consumer = await self._start_consumer()
                self.started.set()
                backoff = 0.5
                await self._poll_loop(self._consumer)
            except asyncio.CancelledError:
                raise
            except GroupJoinStalled as stalled:
                self.join_restarts += 1
                log.warning("consumer %s: %s; leaving the group, releasing a departed leader, joining again", self.handler.name, stalled)
                await self._close_consumer()
                await self._release_departed_leader()
            except Exception:
                log.exception("consumer %s failed; restarting in %.1fs", self.handler.name, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
            finally:
                await self._close_consumer()

    async def _close_consumer(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                await consumer.stop()
            except Exception:
                log.warning("consumer stop failed", exc_info=True)

    async def _release_departed_leader(self) -> None:
        topics = [self.kafka.physical(t) for t in self.handler.topics]
        try:
            await asyncio.wait_for(release_departed_leader(self.kafka, self.group_id, topics), timeout=30)
        except Exception:
            log.warning("consumer %s: releasing a departed leader failed", self.handler.name, exc_info=True)

    async def _poll_loop(self, consumer: AIOKafkaConsumer) -> None:
        watchdog = JoinWatchdog(self.kafka.consumer_join_watchdog_s)
        while not self._stopping:
            batches = await consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=self.batch_size)
            watchdog.observe(bool(batches) or group_join_complete(consumer))
            if not batches:
                continue
            # every partition of the poll in one transaction: fewer, bigger claims and upserts; each partition's
            # records stay in offset order, and the handler's merge does not depend on the order across partitions
            deliveries = [
                Delivery(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ())) for records in batches.values() for r in records
            ]
            try:
                await self.processor.process(deliveries)
            except Exception:
                for tp, records in batches.items():
                    consumer.seek(tp, records[0].offset)  # nothing committed: read the batch again
                raise
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
            for tp, records in batches.items():
                self._record_lag(consumer, tp, records[-1].offset + 1)

    def _record_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition, position: int) -> None:
        highwater = consumer.highwater(tp)
        if highwater is not None:
            CONSUMER_LAG.labels(self.handler.name, self.kafka.logical(tp.topic), str(tp.partition)).set(max(0, highwater - position))
