"""Idempotent consumer (inbox): apply an event and record its id in one transaction.

Offsets are committed only after that transaction commits: at-least-once delivery,
exactly-once effect. A message whose handler keeps failing goes, after `max_attempts`,
to `<topic>.dlq` with its error and origin, and into the service's `dead_letters` table in the
transaction that records the give-up in the inbox; a schema-invalid one goes there at once.
The partition keeps flowing either way. `InboxProcessor.replay_dead_letter` puts a stored dead
letter back through the handler (crm_common.dlq: `crm-dlq`, the admin endpoints).

A broker that forgot what it held must not make a consumer skip: a group whose committed offset is
beyond a partition's end starts that partition from the earliest offset, and a consumer that sees
another cluster id than before reads every partition it gets on the new cluster from the start
(the inbox drops what was applied).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from opentelemetry.trace import SpanKind
from sqlalchemy import BigInteger, Column, Integer, LargeBinary, PrimaryKeyConstraint, String, Table, Text, delete, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.bus import BrokerProbe, TopicsMissing
from crm_common.context import correlation_id_var
from crm_common.db import Database, UTCDateTime, utcnow
from crm_common.events.envelope import EventEnvelope, EventPayload, InvalidEvent, decode_envelope
from crm_common.events.topics import dlq_topic
from crm_common.metrics import BROKER_LOSSES, CONSUMER_LAG, CONSUMER_RUNNING, DLQ_MESSAGES, EVENTS_CONSUMED
from crm_common.outbox import messaging_metadata
from crm_common.settings import KafkaSettings
from crm_common.tracing import batch_span, traceparent_header

log = logging.getLogger(__name__)

LAG_REPORT_INTERVAL_S = 5.0
LAG_POSITION_WAIT_S = 0.2
UNSEEN_TOPICS_RETRY_S = 1.0

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


# The durable copy of every dead letter (the `.dlq` topic is the other): survives a broker that forgets,
# listed and replayed with `crm-dlq` or the admin endpoints.
dead_letters_table = Table(
    "dead_letters",
    messaging_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False),
    Column("topic", String(200), nullable=False),  # the original (logical) topic
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", Text, nullable=False),
    Column("event_id", String(36), nullable=True),  # None when the message was not a valid envelope
    Column("event_type", String(100), nullable=True),
    Column("body", LargeBinary, nullable=False),
    Column("error", Text, nullable=False),
    Column("error_type", String(200), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("replayed_at", UTCDateTime, nullable=True),
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


@dataclass(frozen=True)
class Event:
    envelope: EventEnvelope
    payload: EventPayload
    delivery: Delivery
    # tracing on: the traceparent that what the handler does for this event continues (a queued message, a rescoring
    # mark), in the event's own trace even when the batch's span is a child of another event's; None when off
    traceparent: str | None = None


class EventHandler(Protocol):
    """What a service implements. `handle_batch`, when present, is used for whole batches."""

    name: str
    topics: tuple[str, ...]
    event_types: frozenset[str] | None

    async def handle(self, session: AsyncSession, event: Event) -> None: ...


class DeadLetterWriter(Protocol):
    async def send(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> Any: ...


def _staged_traceparent(event: Event) -> str | bytes | None:
    """The trace context the event was published in: the relay's Kafka header, else the envelope's own."""
    return traceparent_header(event.delivery.headers) or event.envelope.traceparent


class InboxProcessor:
    """The broker-independent core: turns deliveries into applied events, inbox rows and dead letters."""

    def __init__(
        self, db: Database, handler: EventHandler, dead_letters: DeadLetterWriter, *, max_attempts: int = 5, retry_delay_s: float = 0.1
    ):
        self.db = db
        self.handler = handler
        self.dead_letters = dead_letters
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self.logical_topic: Callable[[str], str] = lambda topic: topic
        # crm_common.runtime.configure_tracing: the service whose spans each batch is applied in, in the events' trace
        self.traced_as: str | None = None

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
        if self.traced_as is None:
            await self._apply_batch(events)
            return
        staged = [_staged_traceparent(event) for event in events]
        attributes = {
            "messaging.system": "kafka",
            "messaging.consumer.group.name": self.handler.name,
            "messaging.batch.message_count": len(events),
        }
        name = f"{events[0].delivery.topic} process"
        with batch_span(self.traced_as, name, staged, kind=SpanKind.CONSUMER, attributes=attributes) as continued:
            events = [replace(event, traceparent=continued.get(key) if key else None) for event, key in zip(events, staged)]
            await self._apply_batch(events)

    async def _apply_batch(self, events: list[Event]) -> None:
        try:
            await self._apply(events)
        except Exception:
            log.warning("batch of %d failed; applying one by one", len(events), exc_info=True)
            for event in events:
                await self._apply_with_retries(event)

    async def _apply(self, events: list[Event]) -> None:
        async with self.db.transaction() as session:
            await self._apply_in(session, events)

    async def _apply_in(self, session: AsyncSession, events: list[Event]) -> int:
        """Claim the events in the inbox and hand the fresh ones to the handler, in the caller's transaction."""
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
        return len(fresh)

    async def _claim(self, session: AsyncSession, events: list[Event], outcome: str) -> list[Event]:
        """Record the events in the inbox; return, in order, those that were not there yet.

        One INSERT ... ON CONFLICT DO NOTHING RETURNING: the rows it returns are the fresh events.
        It commits or rolls back with the caller's transaction, so a failed apply claims nothing.
        """
        now = utcnow()
        rows: dict[str, dict[str, Any]] = {}
        for event in events:
            event_id = str(event.envelope.event_id)
            rows.setdefault(
                event_id,
                {
                    "consumer": self.handler.name,
                    "event_id": event_id,
                    "event_type": event.envelope.type,
                    "outcome": outcome,
                    "processed_at": now,
                },
            )
        if session.get_bind().dialect.name == "postgresql":  # ids and types as two arrays: one statement text for every batch size
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

    async def _apply_with_retries(self, event: Event) -> None:
        error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._apply([event])
                return
            except Exception as exc:
                error = exc
                log.warning(
                    "handler %s failed on %s (attempt %d/%d): %s",
                    self.handler.name,
                    event.envelope.event_id,
                    attempt,
                    self.max_attempts,
                    exc,
                )
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
        async with self.db.transaction() as session:
            await session.execute(
                insert(dead_letters_table).values(
                    consumer=self.handler.name,
                    topic=topic,
                    partition=delivery.partition,
                    offset=delivery.offset,
                    key=key,
                    event_id=str(event.envelope.event_id) if event else None,
                    event_type=event.envelope.type if event else None,
                    body=delivery.value,
                    error=str(error)[:4000],
                    error_type=type(error).__name__,
                    attempts=attempts,
                    created_at=utcnow(),
                )
            )
            if event is not None:
                await self._claim(session, [event], "dead_letter")
        DLQ_MESSAGES.labels(self.handler.name, topic).inc()
        log.error("dead-lettered %s[%d]@%d after %d attempt(s): %s", topic, delivery.partition, delivery.offset, attempts, error)

    async def replay_dead_letter(self, dead_letter_id: int) -> bool:
        """Put a stored dead letter of this consumer back through the handler and mark it replayed, in one
        transaction. True when the handler applied it, False when the inbox shows it was applied since.

        Raises InvalidEvent when the body is still not a valid event, LookupError when there is no such
        unreplayed dead letter of this consumer, and whatever the handler raises (nothing is changed then).
        """
        async with self.db.transaction() as session:
            row = (
                await session.execute(
                    select(dead_letters_table).where(
                        dead_letters_table.c.id == dead_letter_id,
                        dead_letters_table.c.consumer == self.handler.name,
                        dead_letters_table.c.replayed_at.is_(None),
                    )
                )
            ).one_or_none()
            if row is None:
                raise LookupError(f"no dead letter {dead_letter_id} of {self.handler.name} waiting for a replay")
            envelope = decode_envelope(row.body)
            event = Event(envelope, envelope.parsed(), Delivery(row.topic, row.partition, row.offset, row.key.encode(), row.body))
            await session.execute(
                delete(inbox_table).where(
                    inbox_table.c.consumer == self.handler.name,
                    inbox_table.c.event_id == str(envelope.event_id),
                    inbox_table.c.outcome == "dead_letter",
                )
            )
            applied = await self._apply_in(session, [event]) == 1
            await session.execute(update(dead_letters_table).where(dead_letters_table.c.id == dead_letter_id).values(replayed_at=utcnow()))
        return applied


class BrokerReplaced(RuntimeError):
    """The broker answers with another cluster id than the one this consumer read from."""


class RewindLostPartitions(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    """On assignment, starts from the earliest offset every partition whose position the broker no longer backs.

    That is a partition whose committed offset is beyond its end (the broker lost records: unclean
    leader election, a topic deleted and created again), and, after the consumer saw the cluster id
    change, every partition the first time it is assigned on the new cluster: offsets committed there
    before the change was noticed may come from positions on the old one. Re-reading is safe, the
    inbox drops what was applied; skipping is not.
    """

    def __init__(self, owner: InboxConsumer):
        self.owner = owner
        self.consumer: AIOKafkaConsumer | None = None
        self.rewind_unseen = False  # set when the cluster changed: rewind partitions not yet positioned on the new one
        self.positioned: set[TopicPartition] = set()
        # between a join's assignment and the next rebalance's revocation (aiokafka calls these for every generation,
        # an empty assignment included): the member holds a completed generation
        self.holds_generation = False

    def cluster_changed(self) -> None:
        self.rewind_unseen = True
        self.positioned.clear()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.holds_generation = False
        self.owner.forget_lag(revoked)  # another member reports them now

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.holds_generation = True
        if not assigned or self.consumer is None:
            return
        consumer, partitions = self.consumer, sorted(assigned)
        rewind = [tp for tp in partitions if self.rewind_unseen and tp not in self.positioned]
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            committed = await consumer.committed(tp)
            if tp not in rewind and committed is not None and committed > ends.get(tp, 0):
                log.warning(
                    "consumer %s: committed offset %d of %s[%d] is beyond its end %d: reading it from the start",
                    self.owner.handler.name,
                    committed,
                    tp.topic,
                    tp.partition,
                    ends.get(tp, 0),
                )
                rewind.append(tp)
        if rewind:
            for tp, offset in (await consumer.beginning_offsets(rewind)).items():
                consumer.seek(tp, offset)
        self.positioned.update(partitions)


class GroupJoinStalled(RuntimeError):
    """A development broker's adapter saw a group join that does not complete: the consumer leaves and joins again."""


class JoinWatch(Protocol):
    def observe(self, joined: bool) -> None:
        """Called between polls with whether the member holds a completed generation; may raise GroupJoinStalled."""


class DevBrokerAdapter(Protocol):
    """What a development broker needs from a consumer beyond the Kafka protocol (crm_devbroker's `tansu`: a group
    left waiting for a departed leader). Found by KAFKA_DEV_BROKER in the entry point group `crm.dev_brokers`;
    against a Kafka cluster there is none and the consumer does nothing of this."""

    first_join_timeout_s: float | None  # a first join taking longer raises GroupJoinStalled
    # the broker keeps a formed generation's assignment when its members join again unchanged (the rebalance that
    # follows a metadata change): a consumer whose topics appeared in its metadata joins again as a new member
    rejoin_when_topics_appear: bool

    def join_watch(self) -> JoinWatch: ...

    async def after_stalled_join(self, group_id: str, topics: list[str]) -> None:
        """The consumer left its group after GroupJoinStalled: repair what the broker needs before it joins again."""


DEV_BROKER_ENTRY_POINTS = "crm.dev_brokers"


@functools.cache
def _dev_broker_factory(name: str) -> Callable[[KafkaSettings], DevBrokerAdapter]:
    found = entry_points(group=DEV_BROKER_ENTRY_POINTS, name=name)
    if not found:
        raise RuntimeError(f"KAFKA_DEV_BROKER={name}: no such development broker installed (crm-devbroker provides 'tansu')")
    factory: Callable[[KafkaSettings], DevBrokerAdapter] = next(iter(found)).load()
    return factory


def dev_broker_adapter(kafka: KafkaSettings) -> DevBrokerAdapter | None:
    """The adapter of the development broker KAFKA_DEV_BROKER names; None when it names none (production)."""
    return _dev_broker_factory(kafka.dev_broker)(kafka) if kafka.dev_broker else None


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
        broker_check_interval_s: float = 10.0,
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
        self.dev_broker = dev_broker_adapter(kafka)
        self.join_restarts = 0  # times the development broker's adapter made this consumer leave and join again
        self.broker_check_interval_s = broker_check_interval_s
        self.cluster_id: str | None = None  # the cluster this consumer reads from, as of its last check
        self._next_check = 0.0
        self._next_lag_report = 0.0
        self._next_unseen_check = 0.0
        self._unseen: set[str] = set()  # subscribed topics this consumer's metadata lacked at the last look
        self._rewinder = RewindLostPartitions(self)

    def stop(self) -> None:
        self._stopping = True

    async def _start_consumer(self) -> AIOKafkaConsumer:
        async with BrokerProbe(self.kafka) as probe:  # a subscription to a missing topic gets its partitions only
            missing = await probe.missing_topics(self.handler.topics)  # at the next metadata refresh, minutes later
        if missing:
            raise TopicsMissing(f"the broker has no topic {', '.join(sorted(missing))} yet")
        consumer = AIOKafkaConsumer(
            **self.kafka.client_options(),
            group_id=self.group_id,
            client_id=f"{self.kafka.client_id_prefix}-{self.handler.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_size,
            session_timeout_ms=self.kafka.consumer_session_timeout_ms,
            heartbeat_interval_ms=self.kafka.consumer_heartbeat_interval_ms,
        )
        consumer.subscribe([self.kafka.physical(t) for t in self.handler.topics], listener=self._rewinder)
        self._rewinder.consumer = consumer
        self._rewinder.holds_generation = False
        self._unseen = set()
        join_limit_s = self.dev_broker.first_join_timeout_s if self.dev_broker else None
        try:
            await asyncio.wait_for(consumer.start(), join_limit_s)
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
            except BrokerReplaced as replaced:
                log.warning(
                    "consumer %s: %s; joining the new cluster's group and reading its partitions from the start",
                    self.handler.name,
                    replaced,
                )
            except TopicsMissing as missing:
                log.warning("consumer %s: %s; waiting for them", self.handler.name, missing)
                await asyncio.sleep(1.0)
            except GroupJoinStalled as stalled:
                self.join_restarts += 1
                log.warning("consumer %s: %s; leaving the group, repairing it, joining again", self.handler.name, stalled)
                await self._close_consumer()
                await self._after_stalled_join()
            except Exception:
                log.exception("consumer %s failed; restarting in %.1fs", self.handler.name, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
            finally:
                await self._close_consumer()

    async def _close_consumer(self) -> None:
        CONSUMER_RUNNING.labels(self.handler.name).set(0)
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                await consumer.stop()
            except Exception:
                log.warning("consumer stop failed", exc_info=True)

    async def _after_stalled_join(self) -> None:
        if self.dev_broker is None:
            return
        topics = [self.kafka.physical(t) for t in self.handler.topics]
        try:
            await asyncio.wait_for(self.dev_broker.after_stalled_join(self.group_id, topics), timeout=30)
        except Exception:
            log.warning("consumer %s: the development broker's group repair failed", self.handler.name, exc_info=True)

    async def _poll_loop(self, consumer: AIOKafkaConsumer) -> None:
        watch = self.dev_broker.join_watch() if self.dev_broker else None
        while not self._stopping:
            await self._check_broker()
            self._ask_again_for_unseen_topics(consumer)
            batches = await consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=self.batch_size)
            joined = bool(batches) or self._rewinder.holds_generation
            CONSUMER_RUNNING.labels(self.handler.name).set(1 if joined else 0)
            if watch is not None:
                watch.observe(joined)
            if not batches:
                await self._report_idle_lag(consumer)
                continue
            # every partition of the poll in one transaction: fewer, bigger claims and upserts; each partition's
            # records stay in offset order, and the handler's merge does not depend on the order across partitions
            deliveries = [
                Delivery(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                for records in batches.values()
                for r in records
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

    async def _check_broker(self) -> None:
        """Every `broker_check_interval_s`: raise BrokerReplaced when the cluster id changed since the last check.

        A broker that cannot be asked now is asked again next time: the poll loop has its own error handling.
        """
        if time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + self.broker_check_interval_s
        try:
            async with BrokerProbe(self.kafka) as probe:
                cluster_id = await probe.cluster_id()
        except Exception as exc:
            log.debug("consumer %s: broker check failed: %s", self.handler.name, exc)
            return
        previous, self.cluster_id = self.cluster_id, cluster_id
        if previous is not None and cluster_id != previous:
            BROKER_LOSSES.labels(self.handler.name, "consumer").inc()
            self._rewinder.cluster_changed()
            raise BrokerReplaced(f"cluster id {previous} became {cluster_id}")

    def _ask_again_for_unseen_topics(self, consumer: AIOKafkaConsumer) -> None:
        """A subscribed topic missing from the consumer's metadata gets no partitions: when the metadata refreshed from
        a broker that had lost the topic (restarted empty, topic deleted) before it was created again, the group's
        leader assigned nothing and the members sit in a completed generation with no partitions. aiokafka asks for
        such a topic again only at its periodic refresh (metadata_max_age_ms, 5 minutes); a refresh asking for topic
        auto-creation would have created it, but no client here does (crm_common.bus). So it is asked for again every
        second; once its partitions are known, aiokafka sees the metadata change and the group rebalances."""
        if time.monotonic() < self._next_unseen_check:
            return
        self._next_unseen_check = time.monotonic() + UNSEEN_TOPICS_RETRY_S
        unseen = {t for t in consumer.subscription() if not consumer.partitions_for_topic(t)}
        appeared, self._unseen = self._unseen - unseen, unseen
        if unseen:
            log.info("consumer %s: no metadata for %s; asking the broker again", self.handler.name, ", ".join(sorted(unseen)))
            consumer._client.force_metadata_update()  # no public call for it; aiokafka's background task refreshes
        if appeared and self.dev_broker is not None and self.dev_broker.rejoin_when_topics_appear:
            raise GroupJoinStalled(
                f"{', '.join(sorted(appeared))} appeared; the development broker keeps the assignment of a member that joins again"
            )

    @property
    def joined(self) -> bool:
        """The loop runs and holds a completed group generation (an idle replica with no partitions counts)."""
        return self._consumer is not None and self._rewinder.holds_generation

    async def _report_idle_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Between batches the lag is set where records were applied; a consumer that gets nothing (stuck behind
        a slow fetch, or the partitions' writers stopped) reports its assigned partitions every few seconds."""
        if time.monotonic() < self._next_lag_report:
            return
        self._next_lag_report = time.monotonic() + LAG_REPORT_INTERVAL_S
        for tp in consumer.assignment():
            try:
                # position() waits until the partition has one, which never comes while its topic is gone from a
                # restarted broker: the poll loop must go on (and ask for the topic again), so the report gives up
                position = await asyncio.wait_for(consumer.position(tp), timeout=LAG_POSITION_WAIT_S)
            except Exception:  # no position yet (being assigned, or its topic is gone): next time
                continue
            self._record_lag(consumer, tp, position)

    def forget_lag(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            try:
                CONSUMER_LAG.remove(self.handler.name, self.kafka.logical(tp.topic), str(tp.partition))
            except KeyError:
                pass

    def _record_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition, position: int) -> None:
        highwater = consumer.highwater(tp)
        if highwater is not None:
            CONSUMER_LAG.labels(self.handler.name, self.kafka.logical(tp.topic), str(tp.partition)).set(max(0, highwater - position))
