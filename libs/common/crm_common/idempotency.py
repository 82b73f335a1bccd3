"""Idempotency-Key on POSTs that create: a retried request gets the first answer, never a second resource.

A route takes `once: Idempotent` and hands it the validated body and the work to do in one transaction:

    @router.post("/things", status_code=201, response_model=ThingOut)
    async def create_thing(data: ThingIn, once: Idempotent):
        async def create(session) -> Answer:
            thing = ThingOut.model_validate(await service.create(session, data))
            return Answer(thing, 201, {"Location": f"/things/{thing.id}"}, subject=thing.customer_id)
        return await once(data, create)

Without the header the work simply runs in `runtime.transaction()`. With it:

* the key is scoped by the caller (the gateway's identity headers) and the route (method and path): two
  callers, or one caller on two paths, never see each other's answers;
* the request is fingerprinted as the SHA-256 of the canonical JSON of the validated body (key order and
  whitespace do not matter);
* the record is claimed (inserted) first in the work's own transaction, and completed with the answer's status,
  headers and body before the commit: a crash anywhere leaves neither the resource nor the record, and a
  committed resource always has its record;
* a concurrent request with the same key blocks on the claim's primary key until the first commits (PostgreSQL
  row lock, SQLite's single writer), then answers the stored result; if the first rolled back, it does the work;
* the same key with the same body later: the stored status, headers and body again, plus `Idempotent-Replayed: true`;
  with another body: 422 `urn:crm:problem:idempotency-key-reused`;
* only answers of work that committed are stored: a refused request (4xx) leaves no record and can be retried
  with the same key once corrected;
* records expire after `idempotency_retention_hours` (ServiceSettings, 24 h); an expired key counts as new, and
  `purge_expired` (a background loop of every service that stores records) deletes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

import orjson
import pydantic_core
import sqlalchemy as sa
from alembic.operations import Operations
from fastapi import Depends, Header, Request, Response
from sqlalchemy import Column, ColumnElement, CursorResult, Index, Integer, MetaData, String, Table, Text, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import Database, UTCDateTime, dialect_insert, utcnow
from crm_common.deps import current_runtime
from crm_common.problems import Problem
from crm_common.runtime import ServiceRuntime

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
STORED_HEADERS = ("location", "etag")  # the answer's headers a replay repeats (content-type is always JSON)
PURGE_INTERVAL_S = 600.0

idempotency_metadata = MetaData()

idempotency_table = Table(
    "idempotency_records",
    idempotency_metadata,
    Column("scope", String(64), primary_key=True),  # sha256 of caller and route: fixed length whatever the path
    Column("key", String(MAX_KEY_LENGTH), primary_key=True),
    Column("route", String(500), nullable=False),  # "POST /customers/C1/contacts", for whoever reads the table
    Column("request_hash", String(64), nullable=False),
    # null only while the claiming transaction runs: a committed record always has its answer
    Column("status_code", Integer, nullable=True),
    Column("response_headers", Text, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("subject", String(200), nullable=True),  # the customer whose data the body holds (privacy erasure)
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
Index("ix_idempotency_records_expires_at", idempotency_table.c.expires_at)
Index("ix_idempotency_records_subject", idempotency_table.c.subject)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x20-\x7e]+$",
        description="A client-chosen unique value (a UUID) per operation. Retrying with the same key and body answers the "
        "first result again and creates nothing twice; the same key with another body is 422. Keys are kept 24 h.",
    ),
]


def create_idempotency_table(op: Operations) -> None:
    """The table as first released, for a service's migration. Spelled out rather than taken from
    `idempotency_table`, so that an old migration keeps building the old table: a later change to the table is a
    new function here, called by a new migration of every service that has the table."""
    op.create_table(
        "idempotency_records",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(MAX_KEY_LENGTH), primary_key=True),
        sa.Column("route", sa.String(500), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response_headers", sa.Text, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("subject", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_idempotency_records_expires_at", "idempotency_records", ["expires_at"])
    op.create_index("ix_idempotency_records_subject", "idempotency_records", ["subject"])


def drop_idempotency_table(op: Operations) -> None:
    op.drop_table("idempotency_records")


@dataclass
class Answer:
    """What a creating route answers: a pydantic model or JSON-able value, its status, Location/ETag headers,
    and the customer whose data it holds (so that erasing a person scrubs the stored copy too)."""

    body: Any
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    subject: str | None = None

    def content(self) -> bytes:
        return pydantic_core.to_json(self.body, by_alias=True)


@dataclass(frozen=True)
class _Stored:
    request_hash: str
    status_code: int
    headers: dict[str, str]
    body: bytes


class _KeyTaken(Exception):
    """The key has a committed record: leave the transaction (nothing written) and answer from the record."""

    def __init__(self, stored: _Stored):
        super().__init__("idempotency key taken")
        self.stored = stored


def request_fingerprint(payload: Any) -> str:
    """SHA-256 of the validated body as canonical JSON (sorted keys): the same request however it was spelled."""
    data = payload.model_dump(mode="json") if hasattr(payload, "model_dump") else payload
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def caller_of(request: Request) -> str:
    """The caller as the gateway names it: role, signed-in subject (or actor), customer."""
    headers = request.headers
    subject = headers.get("x-actor-subject") or headers.get("x-actor-id") or ""
    return "\x1f".join((headers.get("x-actor-role") or "", subject, headers.get("x-customer-id") or ""))


def _scope(caller: str, route: str) -> str:
    return hashlib.sha256(f"{caller}\x1e{route}".encode()).hexdigest()


def _response(status_code: int, headers: dict[str, str], body: bytes, *, replayed: bool = False) -> Response:
    headers = dict(headers)
    if replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")


class IdempotentRequest:
    """One request's view of the idempotency records; see the module docstring."""

    def __init__(self, runtime: ServiceRuntime, key: str | None, caller: str, route: str):
        self.runtime = runtime
        self.key = key
        self.route = route[:500]
        self.scope = _scope(caller, route)
        self.retention = dt.timedelta(hours=runtime.settings.idempotency_retention_hours)

    async def __call__(self, payload: Any, work: Callable[[AsyncSession], Awaitable[Answer]]) -> Response:
        if self.key is None:
            async with self.runtime.transaction() as session:
                answer = await work(session)
            return _response(answer.status_code, answer.headers, answer.content())
        request_hash = request_fingerprint(payload)
        try:
            return await self._first(request_hash, work)
        except _KeyTaken as taken:
            stored = taken.stored
        if stored.request_hash != request_hash:
            raise Problem(
                422,
                "Idempotency key reused",
                f"This {HEADER} was used with a different request body; use a new key.",
                type_="urn:crm:problem:idempotency-key-reused",
            )
        return _response(stored.status_code, stored.headers, stored.body, replayed=True)

    def _this_key(self) -> ColumnElement[bool]:
        return and_(idempotency_table.c.scope == self.scope, idempotency_table.c.key == self.key)

    async def _first(self, request_hash: str, work: Callable[[AsyncSession], Awaitable[Answer]]) -> Response:
        async with self.runtime.transaction() as session:
            await self._claim(session, request_hash)
            answer = await work(session)
            content = answer.content()
            headers = {name: value for name, value in answer.headers.items() if name.lower() in STORED_HEADERS}
            await session.execute(
                update(idempotency_table)
                .where(self._this_key())
                .values(
                    status_code=answer.status_code,
                    response_headers=orjson.dumps(headers).decode(),
                    response_body=content.decode(),
                    subject=answer.subject,
                )
            )
        return _response(answer.status_code, answer.headers, content)

    async def _claim(self, session: AsyncSession, request_hash: str) -> None:
        """Insert the record, or raise _KeyTaken with the committed one. The insert is the transaction's first statement:
        SQLite takes its write lock before any read, and PostgreSQL makes it wait while another transaction holds an
        uncommitted claim of the same key, then skip it if that one committed. An expired record is replaced."""
        now = utcnow()
        claim = {
            "scope": self.scope,
            "key": self.key,
            "route": self.route,
            "request_hash": request_hash,
            "created_at": now,
            "expires_at": now + self.retention,
        }
        for _ in range(2):
            statement = (
                dialect_insert(session, idempotency_table).values(**claim).on_conflict_do_nothing().returning(idempotency_table.c.key)
            )
            if (await session.execute(statement)).first() is not None:
                return
            row = (
                await session.execute(
                    select(
                        idempotency_table.c.request_hash,
                        idempotency_table.c.status_code,
                        idempotency_table.c.response_headers,
                        idempotency_table.c.response_body,
                        idempotency_table.c.expires_at,
                    ).where(self._this_key())
                )
            ).first()
            if row is not None and row.expires_at > now:
                raise _KeyTaken(_Stored(row.request_hash, row.status_code, orjson.loads(row.response_headers), row.response_body.encode()))
            await session.execute(delete(idempotency_table).where(self._this_key(), idempotency_table.c.expires_at <= now))
        raise Problem(
            409,
            "Idempotency key in progress",
            "A request with this Idempotency-Key is being processed; retry.",
            type_="urn:crm:problem:idempotency-key-in-progress",
            headers={"Retry-After": "1"},
        )


async def idempotent_request(request: Request, key: IdempotencyKey = None) -> IdempotentRequest:
    return IdempotentRequest(current_runtime(request), key, caller_of(request), f"{request.method} {request.url.path}")


Idempotent = Annotated[IdempotentRequest, Depends(idempotent_request)]


async def purge_expired(db: Database, *, now: dt.datetime | None = None) -> int:
    async with db.transaction() as session:
        result = await session.execute(delete(idempotency_table).where(idempotency_table.c.expires_at <= (now or utcnow())))
        return cast("CursorResult[Any]", result).rowcount or 0


def keep_idempotency_records(runtime: ServiceRuntime, interval_s: float = PURGE_INTERVAL_S) -> None:
    """Register the purge of expired records as a background loop of the service (every replica may run it)."""

    async def purge_loop() -> None:
        while True:
            try:
                purged = await purge_expired(runtime.db)
                if purged:
                    log.info("purged %d expired idempotency records", purged)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("idempotency purge failed; next try in %.0f s", interval_s, exc_info=True)
            await asyncio.sleep(interval_s)

    runtime.add_background_loop("idempotency-purge", purge_loop)
