"""Audit trail of personal data: who read or changed which customer's data, when, through which request.

One append-only table per service that holds personal data (`audit_log`, created by `create_audit_tables(op)` in the
service's migration). A row: `id` (1, 2, 3... without gaps), `at`, `actor`, `role`, `customer_id`, `contact_id` (the
person, when the data is a person's), `action` (`read`, `create`, `update`, `delete`, `export`, `erase`), `resource`,
`fields` (the names of the fields read or changed, never their values), `request_id` (the correlation id), and the
chain: `prev_hash` (the previous row's `row_hash`) and `row_hash` = SHA-256 over the row's content and `prev_hash`.
An edited row no longer matches its hash, a deleted one breaks the chain or the id sequence; `crm-audit verify`
(`verify_chain`) finds both. Deleting the newest rows leaves a consistent chain: that needs an anchor, the head a
previous `verify` printed (`--anchor ID:HASH`).

* Changes: `await append(session, [entry])` inside the transaction that makes the change, as its last statement
  (rows are chained under a lock on the one `audit_head` row, held until that transaction commits).
* Reads: `trail.read(entry)` puts the entry on a bounded in-memory queue and returns at once; a background loop
  (`AuditTrail.run`) appends what is queued every `flush_interval_s` in one transaction. A full queue makes the read
  wait for room instead of dropping the record. On a crash (kill -9, out of memory) the records still queued, at
  most `flush_interval_s` worth, are lost; a graceful stop flushes them.
* Erasure: `pseudonymise_contact(session, contact_id)` clears `contact_id` in the person's rows. The hash covers
  `contact_digest` (SHA-256 of the contact id), not the id, so the chain stays valid and the rows stay, with
  the digest as the person's pseudonym.
* Append-only for the application's role: triggers (PostgreSQL and SQLite) refuse every UPDATE and DELETE of
  `audit_log` except that one pseudonymising UPDATE. Retention (docs/operations.md) is the database owner's job.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

import sqlalchemy as sa
from alembic.operations import Operations
from fastapi import APIRouter, Query
from sqlalchemy import Column, CursorResult, Index, Integer, MetaData, RowMapping, String, Table, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.context import current_correlation_id
from crm_common.db import Database, UTCDateTime, utcnow
from crm_common.deps import Actor, ActorDep, SessionDep
from crm_common.events.bounds import FactDateTime, NonNegativeInt32
from crm_common.problems import Problem
from crm_common.runtime import ServiceRuntime

log = logging.getLogger(__name__)

GENESIS = "0" * 64
ACTIONS = ("read", "create", "update", "delete", "export", "erase")
CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "role",
    "customer_id",
    "contact_id",
    "contact_digest",
    "action",
    "resource",
    "fields",
    "request_id",
    "row_hash",
)

audit_metadata = MetaData()

audit_table = Table(
    "audit_log",
    audit_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(50), nullable=False),
    Column("customer_id", String(200), nullable=True),
    Column("contact_id", String(200), nullable=True),
    Column("contact_digest", String(64), nullable=True),
    Column("action", String(20), nullable=False),
    Column("resource", String(100), nullable=False),
    Column("fields", Text, nullable=False),  # JSON list of field names
    Column("request_id", String(200), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
)
Index("ix_audit_log_customer_at", audit_table.c.customer_id, audit_table.c.at)
Index("ix_audit_log_actor_at", audit_table.c.actor, audit_table.c.at)
Index("ix_audit_log_contact_id", audit_table.c.contact_id)
Index("ix_audit_log_contact_digest", audit_table.c.contact_digest)

audit_head_table = Table(
    "audit_head",
    audit_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("last_id", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

# The only UPDATE allowed: contact_id set to NULL, nothing else changed (pseudonymisation on erasure).
_SAME_EXCEPT_CONTACT = " AND ".join(
    f"NEW.{c} IS OLD.{c}"
    for c in (
        "id",
        "at",
        "actor",
        "role",
        "customer_id",
        "contact_digest",
        "action",
        "resource",
        "fields",
        "request_id",
        "prev_hash",
        "row_hash",
    )
)
_PG_SAME_EXCEPT_CONTACT = _SAME_EXCEPT_CONTACT.replace(" IS ", " IS NOT DISTINCT FROM ")

PG_APPEND_ONLY = [
    f"""
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.contact_id IS NULL AND {_PG_SAME_EXCEPT_CONTACT} THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$
    """,
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]
SQLITE_APPEND_ONLY = [
    f"""
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    WHEN NOT (NEW.contact_id IS NULL AND {_SAME_EXCEPT_CONTACT})
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only (UPDATE refused)'); END
    """,
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only (DELETE "
    "refused)'); END",
]


def create_audit_tables(op: Operations) -> None:
    """The tables as first released, for a service's migration (spelled out: a later change is a new function)."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(50), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=True),
        sa.Column("contact_id", sa.String(200), nullable=True),
        sa.Column("contact_digest", sa.String(64), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("resource", sa.String(100), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_customer_at", "audit_log", ["customer_id", "at"])
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"])
    op.create_index("ix_audit_log_contact_id", "audit_log", ["contact_id"])
    op.create_index("ix_audit_log_contact_digest", "audit_log", ["contact_digest"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.execute(sa.text(f"INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, '{GENESIS}')"))
    for statement in PG_APPEND_ONLY if op.get_bind().dialect.name == "postgresql" else SQLITE_APPEND_ONLY:
        op.execute(sa.text(statement))


def drop_audit_tables(op: Operations) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("DROP TABLE audit_log"))  # its triggers go with it
        op.execute(sa.text("DROP FUNCTION audit_log_append_only()"))
    else:
        op.drop_table("audit_log")
    op.drop_table("audit_head")


def contact_digest(contact_id: str | None) -> str | None:
    return hashlib.sha256(f"crm-audit-contact:{contact_id}".encode()).hexdigest() if contact_id else None


@dataclass
class AuditEntry:
    actor: str
    role: str
    action: str
    resource: str
    customer_id: str | None = None
    contact_id: str | None = None
    fields: Sequence[str] = ()
    request_id: str | None = None
    at: dt.datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        self.fields = sorted(set(self.fields))


def entry_for(
    who: Actor | Mapping[str, str],
    action: str,
    resource: str,
    *,
    customer_id: str | None,
    fields: Iterable[str],
    contact_id: str | None = None,
) -> AuditEntry:
    """An entry for the caller of the current request: `who` is the route's actor (crm_common.deps.ActorDep) or the
    request's headers (the gateway's identity, verified by the edge token); request id from the correlation id."""
    actor = who if isinstance(who, Actor) else Actor.from_headers(who)
    return AuditEntry(
        actor=actor.name or "anonymous",
        role=actor.role or "unknown",
        action=action,
        resource=resource,
        customer_id=customer_id,
        contact_id=contact_id,
        fields=list(fields),
        request_id=current_correlation_id(),
    )


def _row_hash(row: Mapping[str, Any]) -> str:
    content = [
        row["id"],
        row["at"].astimezone(dt.UTC).isoformat(timespec="microseconds"),
        row["actor"],
        row["role"],
        row["customer_id"],
        row["contact_digest"],
        row["action"],
        row["resource"],
        row["fields"],
        row["request_id"],
        row["prev_hash"],
    ]
    return hashlib.sha256(json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


# The head row locked and read in one statement: PostgreSQL re-reads a row it waited for, so RETURNING gives the
# head as the previous appender committed it (SQLite: the UPDATE takes the database's write lock first).
_LOCK_HEAD = (
    update(audit_head_table)
    .where(audit_head_table.c.id == 1)
    .values(last_id=audit_head_table.c.last_id)
    .returning(audit_head_table.c.last_id, audit_head_table.c.last_hash)
)
_MOVE_HEAD = update(audit_head_table).where(audit_head_table.c.id == 1)
_COLUMNS = ("id", "at", "actor", "role", "customer_id", "contact_id", "contact_digest", "action", "resource", "fields", "request_id")
_PG_TYPES = ("INTEGER", "TIMESTAMPTZ", *["TEXT"] * 9)
# PostgreSQL: the rows and the new head in one statement of fixed text (one array per column, so any batch size is
# the same prepared statement), instead of an executemany and an UPDATE.
_PG_APPEND = sa.text(
    "WITH appended AS (INSERT INTO audit_log ("
    + ", ".join((*_COLUMNS, "prev_hash", "row_hash"))
    + ") SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip((*_COLUMNS, "prev_hash", "row_hash"), (*_PG_TYPES, "TEXT", "TEXT"), strict=True))
    + ")) UPDATE audit_head SET last_id = :last_id, last_hash = :last_hash WHERE id = 1"
)

_PG_ERASED = sa.text(
    "SELECT DISTINCT contact_digest FROM audit_log WHERE action = 'erase' AND contact_digest = ANY(CAST(:digests AS TEXT[]))"
)


async def append(session: AsyncSession, entries: Sequence[AuditEntry]) -> None:
    """Chain `entries` after the newest row, in the caller's transaction. The UPDATE of the head row comes first:
    it locks the head (PostgreSQL row lock, SQLite write lock) until the transaction ends, so chains never fork.
    Statements: that UPDATE (returning the head), the erased people's SELECT when an entry names a person, then the
    rows with the new head (PostgreSQL: one statement; SQLite: an executemany and an UPDATE)."""
    if not entries:
        return
    last_id, last_hash = (await session.execute(_LOCK_HEAD)).one()
    digests = [contact_digest(entry.contact_id) for entry in entries]
    erased = await _erased_digests(session, {digest for digest in digests if digest})
    rows: list[dict[str, Any]] = []
    fields_json: dict[tuple[str, ...], str] = {}  # a batch of reads mostly repeats a few field lists
    for entry, digest in zip(entries, digests, strict=True):
        key = tuple(entry.fields)
        if (fields := fields_json.get(key)) is None:
            fields = fields_json[key] = json.dumps(list(key))
        last_id += 1
        row = {
            "id": last_id,
            "at": entry.at,
            "actor": entry.actor[:200],
            "role": entry.role[:50],
            "customer_id": entry.customer_id,
            "contact_id": None if digest in erased else entry.contact_id,
            "contact_digest": digest,
            "action": entry.action,
            "resource": entry.resource,
            "fields": fields,
            "request_id": entry.request_id,
            "prev_hash": last_hash,
        }
        row["row_hash"] = last_hash = _row_hash(row)
        rows.append(row)
    if session.get_bind().dialect.name == "postgresql":
        columns: dict[str, Any] = {name: [row[name] for row in rows] for name in rows[0]}
        if any(at.tzinfo is None for at in columns["at"]):  # as UTCDateTime refuses them on the other path
            raise ValueError("naive datetime given to a UTCDateTime column")
        await session.execute(_PG_APPEND, {**columns, "last_id": last_id, "last_hash": last_hash})
        return
    await session.execute(audit_table.insert(), rows)
    await session.execute(_MOVE_HEAD.values(last_id=last_id, last_hash=last_hash))


async def _erased_digests(session: AsyncSession, digests: set[str]) -> set[str]:
    """The people among `digests` already erased: a read queued before the erasure and written after it must not
    bring the contact id back (the erase row is committed before any later append takes the head lock)."""
    if not digests:
        return set()
    if session.get_bind().dialect.name == "postgresql":  # one array parameter: the same statement for any batch
        return set((await session.scalars(_PG_ERASED, {"digests": sorted(digests)})).all())
    statement = (
        select(audit_table.c.contact_digest).where(audit_table.c.action == "erase", audit_table.c.contact_digest.in_(digests)).distinct()
    )
    return set((await session.scalars(statement)).all())


async def pseudonymise_contact(session: AsyncSession, contact_id: str) -> int:
    """Erasure: the person's rows keep everything but the contact id (their digest stays as the pseudonym)."""
    result = await session.execute(update(audit_table).where(audit_table.c.contact_id == contact_id).values(contact_id=None))
    return cast("CursorResult[Any]", result).rowcount or 0


class AuditTrail:
    """The read records of one process: queued without waiting for the database, appended in batches."""

    def __init__(self, db: Database, *, max_queued: int = 10_000, flush_interval_s: float = 0.5, batch_size: int = 1000):
        self.db = db
        self.queue: asyncio.Queue[AuditEntry] = asyncio.Queue(max_queued)
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size

    async def read(self, entry: AuditEntry) -> None:
        """Returns at once while the queue has room; a full queue waits (the record is never dropped)."""
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            await self.queue.put(entry)

    async def flush(self) -> int:
        """Append everything queued now; a failed append puts the batch back (the next pass retries it)."""
        flushed = 0
        while not self.queue.empty():
            batch = [self.queue.get_nowait() for _ in range(min(self.batch_size, self.queue.qsize()))]
            try:
                async with self.db.transaction() as session:
                    await append(session, batch)
            except Exception:
                for entry in batch:  # back for the next pass (reads queued meanwhile may have taken the room)
                    if self.queue.full():
                        log.error("audit queue full while the database fails: a read record is lost")
                        break
                    self.queue.put_nowait(entry)
                raise
            flushed += len(batch)
        return flushed

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.flush_interval_s)
                try:
                    await self.flush()
                except Exception:
                    log.warning("audit flush failed; %d read records wait in memory", self.queue.qsize(), exc_info=True)
        finally:  # a graceful stop writes what is queued
            try:
                await asyncio.shield(self.flush())
            except Exception:
                log.error("audit flush at stop failed: %d read records lost", self.queue.qsize(), exc_info=True)


def attach_audit_trail(runtime: ServiceRuntime, **options: Any) -> AuditTrail:
    """An AuditTrail for a service runtime: its flush loop runs with the API (runtime.audit)."""
    trail = AuditTrail(runtime.db, **options)
    runtime.audit = trail
    runtime.add_background_loop("audit-flush", trail.run)
    return trail


# ---- reading the trail --------------------------------------------------------------------------------------------


async def query(
    session: AsyncSession,
    *,
    customer_id: str | None = None,
    actor: str | None = None,
    contact_digest_: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    after_id: int = 0,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Rows in id order, filtered; `since` inclusive, `until` exclusive; page with `after_id` (the last id seen)."""
    statement = select(audit_table).where(audit_table.c.id > after_id).order_by(audit_table.c.id).limit(limit)
    if customer_id:
        statement = statement.where(audit_table.c.customer_id == customer_id)
    if actor:
        statement = statement.where(audit_table.c.actor == actor)
    if contact_digest_:
        statement = statement.where(audit_table.c.contact_digest == contact_digest_)
    if since:
        statement = statement.where(audit_table.c.at >= since)
    if until:
        statement = statement.where(audit_table.c.at < until)
    return [_public(row) for row in (await session.execute(statement)).mappings()]


def _public(row: RowMapping) -> dict[str, Any]:
    return {name: (json.loads(row[name]) if name == "fields" else row[name]) for name in CSV_COLUMNS}


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] = CSV_COLUMNS) -> str:
    """Rows as `query` returns them (or their JSON form); field names separated by spaces."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    return out.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(value)
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


@dataclass
class Verification:
    rows: int
    head_id: int
    head_hash: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_chain(session: AsyncSession, *, anchor: tuple[int, str] | None = None, page: int = 5000) -> Verification:
    """Recompute every row's hash in id order: an edited row, a deleted one (gap or broken link), a row whose contact
    id no longer matches its digest, and (with `anchor`) rows deleted from the end are reported."""
    problems: list[str] = []
    expected_id, expected_prev, rows, last_id = None, None, 0, 0
    anchor_seen = anchor is None
    while True:
        batch = (
            (await session.execute(select(audit_table).where(audit_table.c.id > last_id).order_by(audit_table.c.id).limit(page)))
            .mappings()
            .all()
        )
        if not batch:
            break
        for row in batch:
            rows += 1
            if expected_id is not None and row["id"] != expected_id:
                problems.append(f"rows {expected_id}..{row['id'] - 1} are missing")
            if expected_prev is not None and row["prev_hash"] != expected_prev:
                problems.append(f"row {row['id']}: its prev_hash does not match row {row['id'] - 1}")
            if _row_hash(dict(row)) != row["row_hash"]:
                problems.append(f"row {row['id']}: content does not match its hash (edited)")
            if row["contact_id"] is not None and contact_digest(row["contact_id"]) != row["contact_digest"]:
                problems.append(f"row {row['id']}: contact_id does not match its digest (edited)")
            if anchor and row["id"] == anchor[0]:
                anchor_seen = True
                if row["row_hash"] != anchor[1]:
                    problems.append(f"row {row['id']}: hash differs from the anchor")
            expected_id, expected_prev, last_id = row["id"] + 1, row["row_hash"], row["id"]
        if len(batch) < page:
            break
    if anchor is not None and not anchor_seen:
        problems.append(f"anchor row {anchor[0]} is gone (rows deleted from the end)")
    return Verification(rows, last_id, expected_prev or GENESIS, problems)


def main(argv: list[str] | None = None) -> int:
    """`crm-audit verify --database-url URL [--anchor ID:HASH]` (or a service's *_DATABASE_URL via --url-env)."""
    parser = argparse.ArgumentParser(prog="crm-audit", description="Check a service's audit trail (crm_common.audit).")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="recompute the hash chain; exit 1 when a row was edited or deleted")
    check.add_argument("--database-url", help="the service's database URL (default: the variable named by --url-env)")
    check.add_argument(
        "--url-env", default="PROFILE_DATABASE_URL", help="environment variable holding the URL (e.g. COMPLAINTS_DATABASE_URL)"
    )
    check.add_argument("--anchor", help="ID:HASH printed by an earlier verify: also detects rows deleted from the end")
    args = parser.parse_args(argv)
    url = args.database_url or os.environ.get(args.url_env)
    if not url:
        print(f"crm-audit: no database URL (give --database-url or set {args.url_env})", file=sys.stderr)
        return 2
    anchor = None
    if args.anchor:
        anchor_id, _, anchor_hash = args.anchor.partition(":")
        anchor = (int(anchor_id), anchor_hash)

    async def run() -> Verification:
        db = Database(url)
        try:
            async with db.sessions() as session:
                return await verify_chain(session, anchor=anchor)
        finally:
            await db.dispose()

    result = asyncio.run(run())
    for problem in result.problems:
        print(f"TAMPERED: {problem}")
    print(f"{'ok' if result.ok else 'FAILED'}: {result.rows} rows; head {result.head_id}:{result.head_hash}")
    return 0 if result.ok else 1


def cli() -> None:
    raise SystemExit(main())


# ---- the admins' view (the gateway merges the services' trails: /api/v1/audit) -------------------------------------

audit_router = APIRouter(tags=["audit"])


@audit_router.get("/audit")
async def list_audit(
    caller: ActorDep,
    session: SessionDep,
    customer_id: str | None = Query(default=None, max_length=200),
    actor: str | None = Query(default=None, max_length=200),
    since: FactDateTime | None = Query(default=None, description="from this instant (inclusive, ISO 8601 with offset)"),
    until: FactDateTime | None = Query(default=None, description="to this instant (exclusive)"),
    after_id: Annotated[NonNegativeInt32, Query(description="the last id of the previous page")] = 0,
    limit: int = Query(default=500, ge=1, le=5000),
) -> dict[str, Any]:
    """Audit rows of this service, oldest first; admins only."""
    if caller.role != "admin":
        raise Problem(403, "Forbidden", "Only admins read the audit trail.")
    rows = await query(session, customer_id=customer_id, actor=actor, since=since, until=until, after_id=after_id, limit=limit)
    return {"items": rows, "next_after_id": rows[-1]["id"] if len(rows) == limit else None}
