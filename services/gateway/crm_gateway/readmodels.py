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
        moves, outcomes, orders = [], [], []
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
                orders.append((event.envelope.type, p))
        if orders:
            await apply_shipment_events(session, orders)
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


# a status never goes back: a late "shipped" does not undo "delivered"; incidents override delivery
STATUS_RANK = {"ordered": 0, "shipped": 1, "delayed": 2, "delivered": 3, "cancelled": 4, "damaged": 5, "lost": 5}

SHIPMENT_COLUMNS = ("customer_id", "tracking_number", "status", "service_type", "lane", "amount", "currency", "ordered_at",
                    "shipped_at", "promised_at", "delivered_at", "on_time", "delay_minutes", "updated_at")


async def apply_shipment_events(session: AsyncSession, events: list[tuple[str, Any]]) -> None:
    """Fold a batch of order events into one row per order: one SELECT, one bulk INSERT, one bulk UPDATE."""
    order_ids = list({p.order_id for _, p in events})
    existing: dict[str, dict[str, Any]] = {}
    for start in range(0, len(order_ids), 500):
        rows = (await session.execute(select(shipments).where(shipments.c.order_id.in_(order_ids[start:start + 500])))).mappings().all()
        existing.update({row["order_id"]: dict(row) for row in rows})
    new: dict[str, dict[str, Any]] = {}
    changed: set[str] = set()
    now = utcnow()
    for event_type, p in events:
        row = existing.get(p.order_id) or new.get(p.order_id)
        if row is None:
            row = new[p.order_id] = {c: None for c in SHIPMENT_COLUMNS} | {"order_id": p.order_id, "customer_id": p.customer_id, "status": "ordered"}
        change = {k: v for k, v in _shipment_change(event_type, p).items() if v is not None}
        if STATUS_RANK[change["status"]] < STATUS_RANK[row["status"]]:
            change.pop("status")  # an earlier step arriving late (another producer): keep the later status
        if p.tracking_number:
            change["tracking_number"] = p.tracking_number
        row.update(change, updated_at=now)
        if row["promised_at"] is not None and row["delivered_at"] is not None:
            row["on_time"] = row["delivered_at"] <= row["promised_at"]
        if p.order_id in existing:
            changed.add(p.order_id)
    if new:
        await session.execute(insert(shipments), list(new.values()))
    if changed:
        from sqlalchemy import bindparam

        statement = update(shipments).where(shipments.c.order_id == bindparam("b_order_id")).values(
            {c: bindparam(f"b_{c}") for c in SHIPMENT_COLUMNS})
        await session.execute(statement, [{"b_order_id": oid, **{f"b_{c}": existing[oid][c] for c in SHIPMENT_COLUMNS}} for oid in changed])


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
