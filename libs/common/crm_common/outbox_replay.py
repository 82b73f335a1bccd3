"""`crm-outbox replay`: publish a service's retained outbox rows again, for a time range and topic.

Heals a broker that lost events (the relay does so by itself when it notices, see crm_common.outbox)
or feeds a new or rebuilt read model. Rows go in outbox id order, so each key's events keep their
order; they carry their original event ids, so consumers that applied them skip them (inbox).
Only published rows are replayed (pending ones leave with the relay anyway), and only those still
retained (`<PREFIX>OUTBOX_RETENTION`, 7 days by default).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
from collections import Counter

from sqlalchemy import select

from crm_common.bus import KafkaPublisher
from crm_common.db import Database, utcnow
from crm_common.outbox import outbox_table, publish_in_order

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_moment(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """An ISO 8601 date-time with an offset (`2026-12-07T08:00:00Z`), or a time ago (`90m`, `6h`, `2d`)."""
    ago = _AGO.match(text.strip())
    if ago:
        return (now or utcnow()) - dt.timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither an ISO 8601 date-time nor a time ago like 6h or 2d") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset: add one (e.g. Z or +08:00) so the range is unambiguous")
    return moment.astimezone(dt.UTC)


async def replay_outbox(
    db: Database,
    publisher: KafkaPublisher,
    *,
    since: dt.datetime,
    until: dt.datetime | None = None,
    topic: str | None = None,
    batch_size: int = 500,
    dry_run: bool = False,
) -> Counter[str]:
    """Publish the published rows written in [since, until) (of `topic`, or all) again; returns the count per topic."""
    sent: Counter[str] = Counter()
    after_id = 0
    while True:
        query = (
            select(outbox_table.c.id, outbox_table.c.topic, outbox_table.c.key, outbox_table.c.body)
            .where(outbox_table.c.id > after_id, outbox_table.c.created_at >= since, outbox_table.c.published_at.is_not(None))
            .order_by(outbox_table.c.id)
            .limit(batch_size)
        )
        if until is not None:
            query = query.where(outbox_table.c.created_at < until)
        if topic is not None:
            query = query.where(outbox_table.c.topic == topic)
        async with db.sessions() as session:
            rows = (await session.execute(query)).all()
        if not rows:
            return sent
        if not dry_run:
            published, error = await publish_in_order(publisher, rows)
            if error is not None:
                raise RuntimeError(f"replay stopped after {sum(sent.values()) + len(published)} row(s): {error}") from error
        sent.update(row.topic for row in rows)
        after_id = rows[-1].id


def main(argv: list[str] | None = None) -> int:
    from crm_common.runtime import load_runtime

    parser = argparse.ArgumentParser(prog="crm-outbox", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    replay = sub.add_parser("replay", help="publish retained outbox rows again")
    replay.add_argument("--service", required=True, help="whose outbox: customer-profile, scoring, complaints, notifications, gateway")
    replay.add_argument("--since", required=True, help="rows written at or after: ISO 8601 with offset, or a time ago (6h, 2d)")
    replay.add_argument("--until", help="rows written before (default: now)")
    replay.add_argument("--topic", help="only this (logical) topic, e.g. crm.customers")
    replay.add_argument("--dry-run", action="store_true", help="count what would be published, publish nothing")
    args = parser.parse_args(argv)
    try:
        since = parse_moment(args.since)
        until = parse_moment(args.until) if args.until else None
    except ValueError as exc:
        parser.error(str(exc))

    async def run() -> Counter[str]:
        runtime = load_runtime(args.service)
        try:
            return await replay_outbox(runtime.db, runtime.publisher, since=since, until=until, topic=args.topic, dry_run=args.dry_run)
        finally:
            await runtime.stop()

    counts = asyncio.run(run())
    verb = "would replay" if args.dry_run else "replayed"
    for topic, count in sorted(counts.items()):
        print(f"{verb} {count} event(s) to {topic}")
    print(
        f"{verb} {sum(counts.values())} event(s) of {args.service} written from {since.isoformat()} to "
        f"{until.isoformat() if until else 'now'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
