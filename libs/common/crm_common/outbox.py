"""Transactional outbox: state change and event row commit together; a relay publishes them.

Publication order is the outbox id order, so one key's events leave in the order they were written.
Only one relay per database publishes at a time (PostgreSQL advisory lock), which keeps that order
when a service runs several replicas.

The outbox is also the durable log: published rows are kept for a retention period (`purge_published`
removes older ones), and the relay remembers, per partition, the end of what the broker acknowledged
(`relay_marks`). When the broker no longer holds it (another cluster id, or an end offset below the
mark), the relay puts the retained rows of the affected topics back to pending and publishes them
again in id order; consumers' inboxes drop what they had applied.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    CursorResult,
    Executable,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    Text,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from crm_common.context import current_correlation_id
from crm_common.db import Database, UTCDateTime, utcnow
from crm_common.events.envelope import EventEnvelope, EventPayload, encode_envelope, make_event
from crm_common.events.topics import topic_for
from crm_common.metrics import BROKER_LOSSES, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, OUTBOX_PUBLISHED, OUTBOX_REQUEUED
from crm_common.tracing import TRACEPARENT, context_of, current_traceparent, producer_span

if TYPE_CHECKING:
    from crm_common.bus import KafkaPublisher  # imported where used: aiokafka is not needed to read the tables

# id, topic, key, body: what the relay sends
OutboxRow = Row[int, str, str, str]

log = logging.getLogger(__name__)

messaging_metadata = MetaData()

outbox_table = Table(
    "outbox",
    messaging_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
)
Index(
    "ix_outbox_pending",
    outbox_table.c.id,
    postgresql_where=outbox_table.c.published_at.is_(None),
    sqlite_where=outbox_table.c.published_at.is_(None),
)

Index("ix_outbox_created_at", outbox_table.c.created_at)  # retention purge and replay by time range

# Per partition the relay published to: the offset after the last record the broker acknowledged, and the
# cluster it was acknowledged by. Only ever raised while the cluster stays the same.
relay_marks_table = Table(
    "relay_marks",
    messaging_metadata,
    Column("topic", String(200), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("cluster_id", String(200), nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("topic", "partition", name="pk_relay_marks"),
)

DEFAULT_RETENTION = dt.timedelta(days=7)
RELAY_LOCK_KEY = 0x0C2A0B0C  # advisory lock id; one per database, so one constant is enough


def outbox_row(envelope: EventEnvelope, topic: str | None = None) -> dict[str, Any]:
    return {
        "event_id": str(envelope.event_id),
        "topic": topic or topic_for(envelope.type),
        "key": envelope.key,
        "event_type": envelope.type,
        "body": encode_envelope(envelope).decode(),
        "created_at": utcnow(),
    }


_OUTBOX_COLUMNS = ("event_id", "topic", "key", "event_type", "body", "created_at")
# PostgreSQL, several rows: each column as one array, one statement whatever the count (prepared once per
# connection); ORDER BY the array position so the ids (the publication order) follow the given order.
_OUTBOX_INSERT_POSTGRESQL = (
    "INSERT INTO outbox (event_id, topic, key, event_type, body, created_at) "
    "SELECT e, t, k, y, b, c FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::text[], $6::timestamptz[]) "
    "WITH ORDINALITY AS u(e, t, k, y, b, c, n) ORDER BY n"
)


async def add_to_outbox(
    session: AsyncSession, envelopes: Sequence[EventEnvelope], topic: str | None = None, *, traces: Mapping[str, str | None] | None = None
) -> None:
    """Stage events in the caller's transaction; they exist only if it commits.

    Each event carries the trace it was staged in to the relay and the consumers: `traces[key]` where a batch works
    for several traces at once (scoring's rescoring pass, the dispatcher), else the current span's."""
    if not envelopes:
        return
    traceparent = current_traceparent()
    if traceparent is not None:
        envelopes = [_traced(e, (traces or {}).get(e.key) or traceparent) for e in envelopes]
    rows = [outbox_row(e, topic) for e in envelopes]
    if len(rows) > 1 and session.get_bind().dialect.name == "postgresql":
        arrays = tuple([row[column] for row in rows] for column in _OUTBOX_COLUMNS)
        await (await session.connection()).exec_driver_sql(_OUTBOX_INSERT_POSTGRESQL, arrays)
        return
    await session.execute(insert(outbox_table), rows)


def _traced(envelope: EventEnvelope, traceparent: str) -> EventEnvelope:
    return envelope if envelope.traceparent else envelope.model_copy(update={"traceparent": traceparent})


async def emit(
    session: AsyncSession,
    payload: EventPayload,
    *,
    key: str,
    producer: str,
    occurred_at: dt.datetime | None = None,
) -> EventEnvelope:
    """Build the envelope (carrying the request's correlation id) and stage it in the outbox."""
    envelope = make_event(payload, key=key, producer=producer, correlation_id=current_correlation_id(), occurred_at=occurred_at)
    await add_to_outbox(session, [envelope])
    return envelope


async def outbox_backlog(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).where(outbox_table.c.published_at.is_(None))) or 0)


async def oldest_pending_created_at(session: AsyncSession) -> dt.datetime | None:
    """When the oldest row still waiting for the broker was written (None: nothing waits)."""
    pending = outbox_table.c.published_at.is_(None)
    return await session.scalar(select(outbox_table.c.created_at).where(pending).order_by(outbox_table.c.id).limit(1))


def _id_in(session: AsyncSession, ids: list[int]) -> ColumnElement[bool]:
    """`id = ANY(:ids)` on PostgreSQL (one array parameter: the same statement for every batch size), IN elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        return outbox_table.c.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))
    return outbox_table.c.id.in_(ids)


@dataclass(frozen=True)
class Published:
    """One outbox row the broker acknowledged, and where it put it."""

    id: int
    topic: str
    partition: int | None
    offset: int | None


_TRACEPARENT_FIELD = f'"{TRACEPARENT}":"'  # as encode_envelope writes it (compact JSON)


def _staged_traceparent(row: OutboxRow) -> str | None:
    """The envelope's traceparent; the substring test spares parsing the rows of untraced events (their bytes have
    no such field), which is every row while tracing is off."""
    return orjson.loads(row.body).get(TRACEPARENT) if _TRACEPARENT_FIELD in row.body else None


def _trace_headers(traced_as: str | None, row: OutboxRow) -> list[tuple[str, bytes]] | None:
    """The row's trace as the Kafka header `traceparent`: traced, that of a publish span in the trace that staged the row;
    untraced (`crm-outbox replay`, a relay of a process without tracing), the envelope's own, so whatever reads only the
    header, a republished or replayed event among them, stays in the trace too."""
    staged = _staged_traceparent(row)
    if traced_as is not None:
        attributes = {"messaging.system": "kafka", "messaging.destination.name": row.topic}
        with producer_span(traced_as, f"{row.topic} publish", context_of(staged), attributes):
            staged = current_traceparent()
    return [(TRACEPARENT, staged.encode())] if staged else None


async def publish_in_order(
    publisher: KafkaPublisher, rows: Sequence[OutboxRow], *, traced_as: str | None = None
) -> tuple[list[Published], Exception | None]:
    """Send every row (id, topic, key, body), then keep only the prefix acknowledged without a gap.

    Rows after the first failure are not counted as sent and go again (a duplicate at worst),
    so no key ever sees a later event without the earlier one.
    """
    futures: list[asyncio.Future[Any]] = []
    error: Exception | None = None
    for row in rows:
        try:
            headers = _trace_headers(traced_as, row)
            futures.append(await publisher.send(row.topic, row.key, row.body.encode(), headers))
        except Exception as exc:  # broker gone before the send was even queued
            error = exc
            break
    sent: list[Published] = []
    results = await asyncio.gather(*futures, return_exceptions=True)
    for row, result in zip(rows, results):
        if isinstance(result, Exception):
            error = error or result
            break
        sent.append(Published(row.id, row.topic, getattr(result, "partition", None), getattr(result, "offset", None)))
    return sent, error


def _marks_upsert(session: AsyncSession, cluster_id: str, sent: list[Published]) -> Executable | None:
    """Raise each partition's mark to the end of what was just acknowledged (never lower it)."""
    ends: dict[tuple[str, int], int] = {}
    for record in sent:
        if record.partition is not None and record.offset is not None:
            key = (record.topic, record.partition)
            ends[key] = max(ends.get(key, 0), record.offset + 1)
    if not ends:
        return None
    now = utcnow()
    rows = [
        {"topic": t, "partition": p, "cluster_id": cluster_id, "next_offset": end, "updated_at": now}
        for (t, p), end in sorted(ends.items())
    ]
    postgresql = session.get_bind().dialect.name == "postgresql"
    statement = (postgresql_insert if postgresql else sqlite_insert)(relay_marks_table).values(rows)
    higher = (func.greatest if postgresql else func.max)(relay_marks_table.c.next_offset, statement.excluded.next_offset)
    return statement.on_conflict_do_update(
        index_elements=[relay_marks_table.c.topic, relay_marks_table.c.partition],
        set_={"next_offset": higher, "updated_at": statement.excluded.updated_at},
    )


class OutboxRelay:
    """Publishes pending outbox rows in id order, marks them sent, backs off while the broker is away.

    A crash between publish and mark gives a duplicate on the next run, never a loss;
    consumers absorb duplicates through their inbox. Before its first publish, then every
    `broker_check_interval_s` and after every failed pass, it checks that the broker still holds what
    it acknowledged (`check_broker`).
    """

    def __init__(
        self,
        db: Database,
        publisher: KafkaPublisher,
        *,
        service: str,
        batch_size: int = 500,
        poll_interval_s: float = 0.2,
        max_backoff_s: float = 5.0,
        retention: dt.timedelta = DEFAULT_RETENTION,
        broker_check_interval_s: float = 10.0,
    ):
        self.db = db
        self.publisher = publisher
        self.service = service
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.max_backoff_s = max_backoff_s
        self.retention = retention
        self.broker_check_interval_s = broker_check_interval_s
        self.cluster_id: str | None = None  # of the last check; None: check before publishing
        self._checked_at = 0.0
        self._wake = asyncio.Event()
        self._stopping = False
        self.traced = False  # crm_common.runtime.configure_tracing: a publish span and a traceparent header per row

    def wake(self) -> None:
        """Called after a commit that staged events, so they leave without waiting for the poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def publish_pending(self) -> int:
        """One pass: check the broker when due, publish up to batch_size rows. Returns how many were published."""
        if self.cluster_id is None or time.monotonic() - self._checked_at >= self.broker_check_interval_s:
            await self.check_broker()
        rows = await self._fetch_pending()
        if not rows:
            OUTBOX_BACKLOG.labels(self.service).set(0)
            OUTBOX_OLDEST_AGE.labels(self.service).set(0)
            return 0
        sent, error = await publish_in_order(self.publisher, rows, traced_as=self.service if self.traced else None)
        failed_id = rows[len(sent)].id if error is not None else None
        await self._mark(sent, failed_id, error)
        OUTBOX_PUBLISHED.labels(self.service).inc(len(sent))
        if error is not None:
            self.cluster_id = None  # the broker may come back as another one: check before the next publish
            raise error
        return len(sent)

    async def check_broker(self) -> int:
        """Compare the marks with what the broker holds; put the retained rows of lost topics back to pending.

        A topic counts as lost when a mark's cluster id is not the broker's, or a partition's end offset
        is below its mark (or the partition is gone). Returns how many rows were put back. Raises TopicsMissing,
        putting nothing back, while a lost topic does not exist again yet: a broker restarted empty
        gets its topics from whoever creates them (`crm-broker`, the topics job) a moment later.
        """
        from crm_common.bus import BrokerProbe, TopicsMissing

        async with self.db.sessions() as session:
            marks = (await session.execute(select(relay_marks_table))).all()
        async with BrokerProbe(self.publisher.kafka) as probe:
            cluster_id = await probe.cluster_id() or "unknown"
            same_cluster = [m for m in marks if m.cluster_id == cluster_id]
            ends = await probe.end_offsets((m.topic, m.partition) for m in same_cluster)
            short = {
                (m.topic, m.partition): m.next_offset - 1 for m in same_cluster if ends.get((m.topic, m.partition), -1) < m.next_offset
            }
            held = await probe.holds(short) if short else set()
            lost = {m.topic for m in marks if m.cluster_id != cluster_id} | {topic for topic, partition in set(short) - held}
            missing = await probe.missing_topics(lost) if lost else set()
        if missing:  # republish only into topics created on purpose, with their partition count (crm_common.bus)
            raise TopicsMissing(f"broker {cluster_id} lost what this relay published and has no topic {', '.join(sorted(missing))} yet")
        requeued = await self._requeue(sorted(lost)) if lost else 0
        if lost:
            BROKER_LOSSES.labels(self.service, "relay").inc()
            OUTBOX_REQUEUED.labels(self.service).inc(requeued)
            log.warning(
                "broker %s no longer holds what this relay published to %s: %d retained row(s) go again",
                cluster_id,
                ", ".join(sorted(lost)),
                requeued,
            )
        self.cluster_id = cluster_id
        self._checked_at = time.monotonic()
        return requeued

    async def _requeue(self, topics: list[str]) -> int:
        async with self.db.transaction() as session:
            result = await session.execute(
                update(outbox_table)
                .where(outbox_table.c.topic.in_(topics), outbox_table.c.published_at.is_not(None))
                .values(published_at=None)
            )
            await session.execute(delete(relay_marks_table).where(relay_marks_table.c.topic.in_(topics)))
            return cast("CursorResult[Any]", result).rowcount or 0

    async def _fetch_pending(self) -> Sequence[OutboxRow]:
        async with self.db.sessions() as session:
            return (
                await session.execute(
                    select(outbox_table.c.id, outbox_table.c.topic, outbox_table.c.key, outbox_table.c.body)
                    .where(outbox_table.c.published_at.is_(None))
                    .order_by(outbox_table.c.id)
                    .limit(self.batch_size)
                )
            ).all()

    async def _mark(self, sent: list[Published], failed_id: int | None, error: Exception | None) -> None:
        """Record what the broker acknowledged and where. A crash before this only causes a re-send."""
        async with self.db.transaction() as session:
            if sent:
                await session.execute(update(outbox_table).where(_id_in(session, [r.id for r in sent])).values(published_at=utcnow()))
                marks = _marks_upsert(session, self.cluster_id or "unknown", sent)
                if marks is not None:
                    await session.execute(marks)
            if failed_id is not None:
                await session.execute(
                    update(outbox_table)
                    .where(outbox_table.c.id == failed_id)
                    .values(attempts=outbox_table.c.attempts + 1, last_error=str(error)[:2000])
                )

    async def update_backlog_metric(self) -> int:
        """Backlog and the age of its oldest row (the runtime refreshes them every `metrics_refresh_s`)."""
        async with self.db.sessions() as session:
            backlog = await outbox_backlog(session)
            oldest = await oldest_pending_created_at(session) if backlog else None
        OUTBOX_BACKLOG.labels(self.service).set(backlog)
        OUTBOX_OLDEST_AGE.labels(self.service).set(max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0)
        return backlog

    async def run(self) -> None:
        while not self._stopping:
            try:
                if self.db.dialect == "postgresql":
                    await self._run_as_leader()
                else:
                    await self._relay_loop()
            except asyncio.CancelledError:
                raise
            except Exception:  # lost the lock connection or the database: start over
                log.exception("outbox relay loop failed; restarting")
                await asyncio.sleep(1.0)

    async def _run_as_leader(self) -> None:
        async with self.db.engine.connect() as lock_connection:
            got_lock = await lock_connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK_KEY})
            await lock_connection.commit()
            if not got_lock:
                await self._sleep(max(1.0, self.poll_interval_s))
                return
            try:
                self.cluster_id = None  # another leader may have published meanwhile: check first
                await self._relay_loop(lock_connection)
            finally:
                await lock_connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RELAY_LOCK_KEY})
                await lock_connection.commit()

    async def _relay_loop(self, lock_connection: AsyncConnection | None = None) -> None:
        backoff = self.poll_interval_s
        passes = 0
        while not self._stopping:
            self._wake.clear()
            try:
                published = await self.publish_pending()
                backoff = self.poll_interval_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox publish failed, retrying in %.1fs: %s", backoff, exc)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            passes += 1
            if passes % 300 == 0 and lock_connection is not None:
                await lock_connection.execute(text("SELECT 1"))
            if published < self.batch_size:
                await self._sleep(self.poll_interval_s)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Publish until nothing is pending (tests, graceful shutdown)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                if await self.publish_pending() == 0:
                    return
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("outbox did not drain in time")


async def purge_published(db: Database, retention: dt.timedelta = DEFAULT_RETENTION, *, chunk: int = 5000) -> int:
    """Delete published rows written longer than `retention` ago, a chunk per transaction. Returns how many."""
    removed = 0
    while True:
        async with db.transaction() as session:
            old = (
                select(outbox_table.c.id)
                .where(outbox_table.c.created_at < utcnow() - retention, outbox_table.c.published_at.is_not(None))
                .order_by(outbox_table.c.created_at)
                .limit(chunk)
            )
            result = await session.execute(delete(outbox_table).where(outbox_table.c.id.in_(old)))
            count = cast("CursorResult[Any]", result).rowcount or 0
        removed += count
        if count < chunk:
            return removed


async def purge_loop(db: Database, retention: dt.timedelta, interval_s: float) -> None:
    """The runtime's background loop for the retention: purge, then wait `interval_s`."""
    while True:
        try:
            removed = await purge_published(db, retention)
            if removed:
                log.info("outbox purge removed %d published row(s) older than %s", removed, retention)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("outbox purge failed; trying again in %.0fs", interval_s, exc_info=True)
        await asyncio.sleep(interval_s)
