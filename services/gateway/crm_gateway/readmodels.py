"""Dashboard read models the gateway keeps itself, because no service exposes them as a report:
tier movements (CustomerTierChanged on crm.scoring) and notification outcomes per channel
(NotificationSent / NotificationFailed on crm.notifications). Fed by an InboxConsumer like any service."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_common.db import utcnow
from crm_gateway.db import notification_outcomes, tier_movements


class DashboardReadModel:
    name = "gateway-dashboard"
    topics = ("crm.scoring", "crm.notifications")
    event_types = frozenset({"CustomerTierChanged", "NotificationSent", "NotificationFailed"})

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await self.handle_batch(session, [event])

    async def handle_batch(self, session: AsyncSession, events: list[Event]) -> None:
        moves, outcomes = [], []
        for event in events:
            p = event.payload
            event_id = str(event.envelope.event_id)
            if event.envelope.type == "CustomerTierChanged":
                moves.append({"event_id": event_id, "customer_id": p.customer_id, "old_tier": p.old_tier, "new_tier": p.new_tier, "changed_at": p.changed_at})
            elif event.envelope.type == "NotificationSent":
                outcomes.append({"event_id": event_id, "customer_id": p.customer_id, "channel": p.channel, "outcome": "sent", "at": p.sent_at})
            elif event.envelope.type == "NotificationFailed":
                outcomes.append({"event_id": event_id, "customer_id": p.customer_id, "channel": p.channel, "outcome": "failed", "at": p.failed_at})
        if moves:
            await session.execute(insert(tier_movements), moves)
        if outcomes:
            await session.execute(insert(notification_outcomes), outcomes)


async def tier_movement_report(session: AsyncSession, days: int) -> dict[str, Any]:
    since = utcnow() - dt.timedelta(days=days)
    rows = (await session.execute(
        select(tier_movements.c.old_tier, tier_movements.c.new_tier, func.count())
        .where(tier_movements.c.changed_at >= since)
        .group_by(tier_movements.c.old_tier, tier_movements.c.new_tier)
    )).all()
    movements = sorted(({"from": old or "new", "to": new, "count": int(n)} for old, new, n in rows), key=lambda m: (-m["count"], m["from"], m["to"]))
    return {"days": days, "movements": movements}


async def notification_report(session: AsyncSession, days: int) -> dict[str, Any]:
    since = utcnow() - dt.timedelta(days=days)
    rows = (await session.execute(
        select(notification_outcomes.c.channel, notification_outcomes.c.outcome, func.count())
        .where(notification_outcomes.c.at >= since)
        .group_by(notification_outcomes.c.channel, notification_outcomes.c.outcome)
    )).all()
    channels: dict[str, dict[str, Any]] = {}
    for channel, outcome, n in rows:
        channels.setdefault(channel, {"channel": channel, "sent": 0, "failed": 0})[outcome] = int(n)
    for row in channels.values():
        total = row["sent"] + row["failed"]
        row["delivery_rate"] = round(row["sent"] / total, 4) if total else None
    return {"days": days, "by_channel": sorted(channels.values(), key=lambda r: -(r["sent"] + r["failed"]))}
