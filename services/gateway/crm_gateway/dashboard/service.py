"""Reads of the gateway's read models: the dashboard's tier movements and notification outcomes, a customer's recent
shipments; and the purge of shipments nobody updated for long."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import utcnow
from crm_gateway.dashboard.models import notification_outcomes, shipments, tier_movements


async def tier_movement_report(session: AsyncSession, days: int) -> dict[str, Any]:
    since = utcnow() - dt.timedelta(days=days)
    rows = (
        await session.execute(
            select(tier_movements.c.old_tier, tier_movements.c.new_tier, func.count())
            .where(tier_movements.c.changed_at >= since)
            .group_by(tier_movements.c.old_tier, tier_movements.c.new_tier)
        )
    ).all()
    movements = sorted(
        ({"from": old or "new", "to": new, "count": int(n)} for old, new, n in rows), key=lambda m: (-m["count"], m["from"], m["to"])
    )
    return {"days": days, "movements": movements}


async def notification_report(session: AsyncSession, days: int) -> dict[str, Any]:
    since = utcnow() - dt.timedelta(days=days)
    rows = (
        await session.execute(
            select(notification_outcomes.c.channel, notification_outcomes.c.outcome, func.count())
            .where(notification_outcomes.c.at >= since)
            .group_by(notification_outcomes.c.channel, notification_outcomes.c.outcome)
        )
    ).all()
    channels: dict[str, dict[str, Any]] = {}
    for channel, outcome, n in rows:
        channels.setdefault(channel, {"channel": channel, "sent": 0, "failed": 0})[outcome] = int(n)
    for row in channels.values():
        total = row["sent"] + row["failed"]
        row["delivery_rate"] = round(row["sent"] / total, 4) if total else None
    return {"days": days, "by_channel": sorted(channels.values(), key=lambda r: -(r["sent"] + r["failed"]))}


async def recent_shipments(session: AsyncSession, customer_id: str, limit: int = 10) -> list[dict[str, Any]]:
    rows = (
        (
            await session.execute(
                select(shipments)
                .where(shipments.c.customer_id == customer_id)
                .order_by(func.coalesce(shipments.c.ordered_at, shipments.c.updated_at).desc(), shipments.c.order_id)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    out = []
    for row in rows:
        item = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items() if k != "updated_at"}
        item["amount"] = None if row["amount"] is None else str(row["amount"])
        out.append(item)
    return out


async def purge_shipments(session: AsyncSession, older_than: dt.timedelta) -> int:
    result = await session.execute(delete(shipments).where(shipments.c.updated_at < utcnow() - older_than))
    return result.rowcount or 0
