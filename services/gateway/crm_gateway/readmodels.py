"""Dashboard read models the gateway keeps itself, because no service exposes them as a report:
tier movements (CustomerTierChanged on crm.scoring) and notification outcomes per channel
(NotificationSent / NotificationFailed on crm.notifications). Fed by an InboxConsumer like any service."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_common.db import utcnow
from crm_gateway.db import notification_outcomes, shipments, tier_movements


SHIPMENT_EVENTS = frozenset({"OrderCreated", "OrderShipped", "OrderDelivered", "OrderCancelled", "ShipmentDelayed", "ShipmentDamaged", "ShipmentLost"})


class DashboardReadModel:
    """Tier movements and notification outcomes for the dashboard; with `shipments`, recent shipments
    per customer (logistics.orders) for the customer 360."""

    name = "gateway-dashboard"

    def __init__(self, *, shipments: bool = True):
        self.topics = ("crm.scoring", "crm.notifications") + (("logistics.orders",) if shipments else ())
        self.event_types = frozenset({"CustomerTierChanged", "NotificationSent", "NotificationFailed"}) | (SHIPMENT_EVENTS if shipments else frozenset())

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
            elif event.envelope.type in SHIPMENT_EVENTS:
                await apply_shipment_event(session, event.envelope.type, p)
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


def _shipment_change(event_type: str, p) -> dict[str, Any]:
    if event_type == "OrderCreated":
        return {"status": "ordered", "amount": p.amount, "currency": p.currency, "service_type": p.service_type, "lane": p.lane,
                "ordered_at": p.order_date, "promised_at": p.promised_delivery_at}
    if event_type == "OrderShipped":
        return {"status": "shipped", "shipped_at": p.shipped_at}
    if event_type == "OrderDelivered":
        change: dict[str, Any] = {"status": "delivered", "delivered_at": p.delivered_at}
        if p.promised_at is not None:
            change["promised_at"] = p.promised_at
        return change
    if event_type == "OrderCancelled":
        return {"status": "cancelled"}
    if event_type == "ShipmentDelayed":
        return {"status": "delayed", "delay_minutes": p.delay_minutes}
    if event_type == "ShipmentDamaged":
        return {"status": "damaged"}
    return {"status": "lost"}  # ShipmentLost


async def apply_shipment_event(session: AsyncSession, event_type: str, p) -> None:
    """Upsert one order's row; a later event that arrives first (another producer) still lands."""
    change = {k: v for k, v in _shipment_change(event_type, p).items() if v is not None}
    if p.tracking_number:
        change["tracking_number"] = p.tracking_number
    change["updated_at"] = utcnow()
    row = (await session.execute(select(shipments.c.status, shipments.c.promised_at, shipments.c.delivered_at)
                                 .where(shipments.c.order_id == p.order_id))).first()
    if event_type == "OrderCreated" and row is not None and row.status != "ordered":
        change.pop("status")  # created after it already moved on: keep the later status
    promised = change.get("promised_at") or (row.promised_at if row else None)
    delivered = change.get("delivered_at") or (row.delivered_at if row else None)
    if promised is not None and delivered is not None:
        change["on_time"] = delivered <= promised
    if row is None:
        await session.execute(insert(shipments).values(order_id=p.order_id, customer_id=p.customer_id, **{"status": "ordered", **change}))
    else:
        await session.execute(update(shipments).where(shipments.c.order_id == p.order_id).values(**change))


async def recent_shipments(session: AsyncSession, customer_id: str, limit: int = 10) -> list[dict[str, Any]]:
    rows = (await session.execute(
        select(shipments).where(shipments.c.customer_id == customer_id)
        .order_by(func.coalesce(shipments.c.ordered_at, shipments.c.updated_at).desc(), shipments.c.order_id).limit(limit)
    )).mappings().all()
    out = []
    for row in rows:
        item = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items() if k != "updated_at"}
        item["amount"] = None if row["amount"] is None else str(row["amount"])
        out.append(item)
    return out


async def purge_shipments(session: AsyncSession, older_than: dt.timedelta) -> int:
    result = await session.execute(delete(shipments).where(shipments.c.updated_at < utcnow() - older_than))
    return result.rowcount or 0
