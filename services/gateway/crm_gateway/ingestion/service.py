"""Ingestion of TMS/WMS/billing events: validate each event with the models the consumers decode with, drop the ids
seen before, stage the rest in the outbox (the relay publishes them); forget old ids."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections import Counter
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.context import current_correlation_id
from crm_common.db import utcnow
from crm_common.events import EventEnvelope, UnknownEventType, payload_model, registered_events, topic_for
from crm_common.events.logistics import LOGISTICS_EVENT_TYPES
from crm_common.outbox import add_to_outbox
from crm_common.runtime import ServiceRuntime
from crm_gateway.auth import Principal
from crm_gateway.dashboard.service import purge_shipments
from crm_gateway.ingestion.models import ingested_events
from crm_gateway.ingestion.schemas import Status

log = logging.getLogger(__name__)


def _short_errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{loc}: {error.get('msg')}" if loc else str(error.get("msg")))
    return "; ".join(parts)


def build_envelope(item: Any, *, producer: str, correlation_id: str | None) -> EventEnvelope:
    """The TMS's event as a full envelope, or ValueError with the reason it is refused.

    Validated with the very models the consumers decode with (crm_common.events), so what is accepted here
    is what they apply."""
    if not isinstance(item, dict):
        raise ValueError("an event must be a JSON object")
    event_type = item.get("type")
    if event_type not in LOGISTICS_EVENT_TYPES:
        raise ValueError(f"type must be one of {', '.join(LOGISTICS_EVENT_TYPES)}; got {event_type!r}")
    if "event_id" not in item:
        raise ValueError("event_id is required (a UUID the producer keeps for retries)")
    try:
        event_id = uuid.UUID(str(item["event_id"]))
    except ValueError:
        raise ValueError("event_id must be a UUID") from None
    version = item.get("version", 1)
    if type(version) is not int:  # noqa: E721 - 1.5, "1" and true are not versions
        raise ValueError(f"version must be an integer; got {version!r}")
    try:
        model = payload_model(event_type, version)
    except UnknownEventType:
        known = sorted(v for t, v in registered_events() if t == event_type)
        raise ValueError(f"unknown version {version} of {event_type}; known: {', '.join(map(str, known))}") from None
    payload = item.get("payload")
    if not isinstance(payload, dict):
        raise ValueError("payload must be a JSON object")
    try:
        parsed = model.model_validate(payload)
    except ValidationError as exc:
        raise ValueError(f"payload invalid: {_short_errors(exc)}") from None
    customer_id = parsed.customer_id
    key = item.get("key")
    if key is not None and str(key) != customer_id:
        raise ValueError("key must be the payload's customer_id (or be left out)")
    try:
        return EventEnvelope(
            event_id=event_id,
            type=event_type,
            version=version,
            occurred_at=item.get("occurred_at") or dt.datetime.now(dt.UTC),
            producer=item.get("producer") or producer,
            key=customer_id,
            correlation_id=item.get("correlation_id") or correlation_id,
            payload=parsed.model_dump(mode="json"),
        )
    except ValidationError as exc:
        raise ValueError(f"envelope invalid: {_short_errors(exc)}") from None


def _insert_ignoring_duplicates(dialect: str):
    if dialect == "postgresql":
        return postgresql.insert(ingested_events).on_conflict_do_nothing(index_elements=["event_id"])
    if dialect == "sqlite":
        return sqlite.insert(ingested_events).on_conflict_do_nothing(index_elements=["event_id"])
    return sa_insert(ingested_events)


# PostgreSQL: the batch's ids as arrays, one statement whatever the batch size (prepared once per connection)
_RECORD_NEW_IDS_POSTGRESQL = (
    "INSERT INTO ingested_events (event_id, event_type, customer_id, producer, received_at) "
    "SELECT e, t, c, p, $5 FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[]) AS u(e, t, c, p) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


async def record_new_ids(session: AsyncSession, dialect: str, envelopes: dict[str, EventEnvelope], now: dt.datetime) -> set[str]:
    """Remember the event ids; returns those not seen before (the others are duplicates)."""
    if dialect == "postgresql":
        arrays = (
            [eid for eid in envelopes],
            [env.type for env in envelopes.values()],
            [env.key for env in envelopes.values()],
            [env.producer for env in envelopes.values()],
        )
        result = await (await session.connection()).exec_driver_sql(_RECORD_NEW_IDS_POSTGRESQL, (*arrays, now))
        return set(result.scalars().all())
    rows = [
        {"event_id": eid, "event_type": env.type, "customer_id": env.key, "producer": env.producer, "received_at": now}
        for eid, env in envelopes.items()
    ]
    statement = _insert_ignoring_duplicates(dialect).returning(ingested_events.c.event_id)
    return set((await session.execute(statement, rows)).scalars().all())


def _item_result(
    index: int, event_id: str | None, event_type: str | None, status: Status, *, topic: str | None = None, reason: str | None = None
) -> dict:
    """One entry of IngestResult.results, as plain data (a batch answers hundreds of them)."""
    return {"index": index, "event_id": event_id, "type": event_type, "status": status, "topic": topic, "reason": reason}


async def ingest(runtime: ServiceRuntime, items: list[Any], principal: Principal) -> dict:
    """Validate, drop duplicates, stage the rest in the outbox: the IngestResult of the batch, as plain data."""
    producer = (principal.name or principal.subject)[:100]
    correlation_id = current_correlation_id()
    results: list[dict] = []
    candidates: dict[str, tuple[int, EventEnvelope]] = {}
    for index, item in enumerate(items):
        try:
            envelope = build_envelope(item, producer=producer, correlation_id=correlation_id)
        except ValueError as exc:
            raw_id = item.get("event_id") if isinstance(item, dict) else None
            raw_type = item.get("type") if isinstance(item, dict) else None
            raw_type = (
                raw_type if isinstance(raw_type, str) else None
            )  # echo a type only where it is one (the answer's schema says a string)
            results.append(_item_result(index, str(raw_id) if raw_id is not None else None, raw_type, "rejected", reason=str(exc)))
            continue
        event_id = str(envelope.event_id)
        if event_id in candidates:
            results.append(_item_result(index, event_id, envelope.type, "duplicate", reason="repeated in this batch"))
            continue
        candidates[event_id] = (index, envelope)
        results.append(_item_result(index, event_id, envelope.type, "accepted", topic=topic_for(envelope.type)))

    if candidates:
        async with runtime.transaction() as session:
            new_ids = await record_new_ids(session, runtime.db.dialect, {eid: env for eid, (_, env) in candidates.items()}, utcnow())
            await add_to_outbox(session, [env for eid, (_, env) in candidates.items() if eid in new_ids])
        for eid, (index, _) in candidates.items():
            if eid not in new_ids:
                results[index] = _item_result(index, eid, results[index]["type"], "duplicate", reason="event_id seen before")
    counts = Counter(r["status"] for r in results)
    return {"accepted": counts["accepted"], "duplicates": counts["duplicate"], "rejected": counts["rejected"], "results": results}


async def purge_ingested(runtime: ServiceRuntime, older_than: dt.timedelta) -> int:
    """Forget event ids received before now - older_than; a repeat after that is accepted again."""
    async with runtime.db.transaction() as session:
        result = await session.execute(delete(ingested_events).where(ingested_events.c.received_at < utcnow() - older_than))
        return result.rowcount or 0


async def purge_loop(
    runtime: ServiceRuntime, older_than: dt.timedelta, interval_s: float, shipments_older_than: dt.timedelta | None = None
) -> None:
    while True:
        try:
            await purge_ingested(runtime, older_than)
            if shipments_older_than is not None:
                async with runtime.db.transaction() as session:
                    await purge_shipments(session, shipments_older_than)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may be away; try again next time
            log.warning("purging ingested event ids failed", exc_info=True)
        await asyncio.sleep(interval_s)
