"""Dead letters kept in the service's database: list, show and replay them after a fix.

A consumer that gives up on a message writes it to `<topic>.dlq` and, in the transaction that records
the give-up in its inbox, to the `dead_letters` table (crm_common.consumer). The table is what these
tools read: it survives a broker that forgets. A replay puts the stored message back through its
consumer's handler, in one transaction that also marks the row replayed; an event that another
delivery applied since is only marked.

`crm-dlq list|show|replay --service S` runs where the service's settings are (its database URL);
the same operations are the admin endpoints `/admin/dead-letters/<service>` (`dead_letters_router`),
reached through the gateway as `/api/v1/admin/dead-letters/<service>` with the admin role.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Row, select

from crm_common.consumer import dead_letters_table
from crm_common.db import Database
from crm_common.deps import RuntimeDep
from crm_common.events.envelope import InvalidEvent
from crm_common.problems import Problem

if TYPE_CHECKING:
    from crm_common.runtime import ServiceRuntime

State = Literal["waiting", "replayed", "all"]
MAX_ID = 2**63 - 1  # BIGINT: a larger id cannot exist, and the drivers refuse to bind it
NAME = r"^[^\x00-\x1f]*$"  # consumer and topic names have no control characters (PostgreSQL refuses a NUL in text)
_SUMMARY_COLUMNS = [c for c in dead_letters_table.c if c.name != "body"]


def _summary(row: Row[Any]) -> dict[str, Any]:
    item = {c.name: getattr(row, c.name) for c in _SUMMARY_COLUMNS}
    for moment in ("created_at", "replayed_at"):
        item[moment] = item[moment].isoformat() if item[moment] else None
    return item


async def list_dead_letters(
    db: Database, *, consumer: str | None = None, topic: str | None = None, state: State = "waiting", after_id: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    """Dead letters in id order (oldest first), without their bodies; page with `after_id`."""
    query = select(*_SUMMARY_COLUMNS).where(dead_letters_table.c.id > after_id).order_by(dead_letters_table.c.id).limit(limit)
    if consumer:
        query = query.where(dead_letters_table.c.consumer == consumer)
    if topic:
        query = query.where(dead_letters_table.c.topic == topic)
    if state != "all":
        replayed_at = dead_letters_table.c.replayed_at
        query = query.where(replayed_at.is_(None) if state == "waiting" else replayed_at.is_not(None))
    async with db.sessions() as session:
        return [_summary(row) for row in (await session.execute(query)).all()]


async def get_dead_letter(db: Database, dead_letter_id: int) -> dict[str, Any] | None:
    """One dead letter with its message: `body` as text, and `event` parsed when it is JSON."""
    async with db.sessions() as session:
        row = (await session.execute(select(dead_letters_table).where(dead_letters_table.c.id == dead_letter_id))).one_or_none()
    if row is None:
        return None
    text = row.body.decode(errors="replace")
    try:
        event = json.loads(text)
    except ValueError:
        event = None
    return {**_summary(row), "body": text, "event": event}


@dataclass(frozen=True)
class ReplayResult:
    id: int
    outcome: Literal["applied", "already_applied", "not_found", "invalid", "failed"]
    error: str | None = None


async def replay_dead_letters(runtime: ServiceRuntime, ids: list[int]) -> list[ReplayResult]:
    """Replay each dead letter through its consumer's handler (the runtime's consumers, found by name)."""
    processors = {consumer.handler.name: consumer.processor for consumer in runtime.consumers}
    async with runtime.db.sessions() as session:
        owners: dict[int, str] = dict(
            (
                await session.execute(
                    select(dead_letters_table.c.id, dead_letters_table.c.consumer).where(dead_letters_table.c.id.in_(ids))
                )
            ).all()
        )
    results: list[ReplayResult] = []
    for dead_letter_id in ids:
        owner = owners.get(dead_letter_id)
        processor = processors.get(owner) if owner is not None else None
        if processor is None:
            results.append(
                ReplayResult(
                    dead_letter_id,
                    "not_found",
                    None if dead_letter_id not in owners else f"this service has no consumer {owners[dead_letter_id]}",
                )
            )
            continue
        try:
            applied = await processor.replay_dead_letter(dead_letter_id)
        except LookupError:
            results.append(ReplayResult(dead_letter_id, "not_found", "already replayed"))
        except InvalidEvent as exc:
            results.append(ReplayResult(dead_letter_id, "invalid", str(exc)[:2000]))
        except Exception as exc:  # the handler still fails: nothing changed, the row waits
            results.append(ReplayResult(dead_letter_id, "failed", f"{type(exc).__name__}: {exc}"[:2000]))
        else:
            results.append(ReplayResult(dead_letter_id, "applied" if applied else "already_applied"))
    return results


async def waiting_ids(db: Database, *, consumer: str | None = None, topic: str | None = None) -> list[int]:
    ids: list[int] = []
    after_id = 0
    while page := await list_dead_letters(db, consumer=consumer, topic=topic, after_id=after_id, limit=1000):
        ids += [item["id"] for item in page]
        after_id = ids[-1]
    return ids


# ---------------------------------------------------------------------------------------------- admin endpoints
class ReplayFilter(BaseModel):
    consumer: str | None = Field(None, max_length=100, pattern=NAME)
    topic: str | None = Field(None, max_length=200, pattern=NAME)


def dead_letters_router(service_name: str, prefix: str = "") -> APIRouter:
    """`GET .../dead-letters/<service>`, `GET .../{id}`, `POST .../{id}/replay`, `POST .../replay` (every waiting one)."""
    router = APIRouter(prefix=f"{prefix}/admin/dead-letters/{service_name}", tags=["admin"])

    @router.get("")
    async def list_(
        runtime: RuntimeDep,
        consumer: str | None = Query(None, max_length=100, pattern=NAME),
        topic: str | None = Query(None, max_length=200, pattern=NAME),
        state: State = "waiting",
        after_id: int = Query(0, ge=0, le=MAX_ID),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        items = await list_dead_letters(runtime.db, consumer=consumer, topic=topic, state=state, after_id=after_id, limit=limit)
        return {"items": items, "next_after_id": items[-1]["id"] if len(items) == limit else None}

    @router.get("/{dead_letter_id}")
    async def show(runtime: RuntimeDep, dead_letter_id: int = Path(ge=1, le=MAX_ID)) -> dict[str, Any]:
        item = await get_dead_letter(runtime.db, dead_letter_id)
        if item is None:
            raise Problem(404, "Dead letter not found", f"No dead letter {dead_letter_id} in {service_name}.")
        return item

    @router.post("/{dead_letter_id}/replay")
    async def replay_one(runtime: RuntimeDep, dead_letter_id: int = Path(ge=1, le=MAX_ID)) -> dict[str, Any]:
        (result,) = await replay_dead_letters(runtime, [dead_letter_id])
        if result.outcome == "not_found":
            raise Problem(404, "Dead letter not waiting", f"No dead letter {dead_letter_id} waiting for a replay in {service_name}.")
        if result.outcome == "invalid":
            raise Problem(422, "Still not a valid event", result.error or "")
        if result.outcome == "failed":
            raise Problem(409, "Replay failed", result.error or "", dead_letter_id=dead_letter_id)
        return asdict(result)

    @router.post("/replay")
    async def replay_waiting(runtime: RuntimeDep, body: ReplayFilter | None = None) -> dict[str, Any]:
        body = body or ReplayFilter()
        results = await replay_dead_letters(runtime, await waiting_ids(runtime.db, consumer=body.consumer, topic=body.topic))
        return _tally(results)

    return router


def _tally(results: list[ReplayResult]) -> dict[str, Any]:
    counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in ("applied", "already_applied")}
    return {**counts, "failed": [asdict(r) for r in results if r.outcome not in counts]}


# ---------------------------------------------------------------------------------------------- crm-dlq
def main(argv: list[str] | None = None) -> int:
    from crm_common.runtime import load_runtime

    parser = argparse.ArgumentParser(prog="crm-dlq", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="dead letters, oldest first (waiting for a replay unless --state says otherwise)")
    show = sub.add_parser("show", help="one dead letter with its message")
    replay = sub.add_parser("replay", help="put dead letters back through their consumer's handler")
    for command in (listing, show, replay):
        command.add_argument("--service", required=True, help="scoring, complaints, notifications, gateway...")
    for command in (listing, replay):
        command.add_argument("--consumer", help="only this consumer's (its handler name)")
        command.add_argument("--topic", help="only those from this (logical) topic, e.g. logistics.orders")
    listing.add_argument("--state", choices=["waiting", "replayed", "all"], default="waiting")
    listing.add_argument("--limit", type=int, default=100)
    show.add_argument("id", type=int)
    replay.add_argument("ids", type=int, nargs="*", help="dead letter ids; none: every waiting one (with --consumer/--topic)")
    args = parser.parse_args(argv)

    async def run() -> tuple[dict[str, Any] | list[dict[str, Any]], bool]:
        """The answer to print, and whether the command did what was asked."""
        runtime = load_runtime(args.service)
        try:
            if args.command == "list":
                return await list_dead_letters(
                    runtime.db, consumer=args.consumer, topic=args.topic, state=args.state, limit=args.limit
                ), True
            if args.command == "show":
                item = await get_dead_letter(runtime.db, args.id)
                return item or {"not_found": args.id}, item is not None
            ids = args.ids or await waiting_ids(runtime.db, consumer=args.consumer, topic=args.topic)
            tally = _tally(await replay_dead_letters(runtime, ids))
            return tally, not tally["failed"]
        finally:
            await runtime.stop()

    result, ok = asyncio.run(run())
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
