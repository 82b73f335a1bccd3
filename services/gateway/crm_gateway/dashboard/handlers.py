"""Events in: the read models the gateway keeps itself, because no service exposes them as a report: tier movements
(CustomerTierChanged on crm.scoring), notification outcomes per channel (NotificationSent / NotificationFailed on
crm.notifications) and recent shipments (logistics.orders). Fed by an InboxConsumer like any service; read by
dashboard/service.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_common.db import utcnow
from crm_gateway.dashboard.models import notification_outcomes, shipments, tier_movements

SHIPMENT_EVENTS = frozenset(
    {"OrderCreated", "OrderShipped", "OrderDelivered", "OrderCancelled", "ShipmentDelayed", "ShipmentDamaged", "ShipmentLost"}
)


class DashboardReadModel:
    """Tier movements and notification outcomes for the dashboard; with `shipments`, recent shipments
    per customer (logistics.orders) for the customer 360."""

    name = "gateway-dashboard"

    def __init__(self, *, shipments: bool = True):
        self.topics = ("crm.scoring", "crm.notifications") + (("logistics.orders",) if shipments else ())
        self.event_types = frozenset({"CustomerTierChanged", "NotificationSent", "NotificationFailed"}) | (
            SHIPMENT_EVENTS if shipments else frozenset()
        )

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await self.handle_batch(session, [event])

    async def handle_batch(self, session: AsyncSession, events: list[Event]) -> None:
        moves, outcomes, orders = [], [], []
        for event in events:
            p = event.payload
            event_id = str(event.envelope.event_id)
            if event.envelope.type == "CustomerTierChanged":
                moves.append(
                    {
                        "event_id": event_id,
                        "customer_id": p.customer_id,
                        "old_tier": p.old_tier,
                        "new_tier": p.new_tier,
                        "changed_at": p.changed_at,
                    }
                )
            elif event.envelope.type == "NotificationSent":
                outcomes.append(
                    {"event_id": event_id, "customer_id": p.customer_id, "channel": p.channel, "outcome": "sent", "at": p.sent_at}
                )
            elif event.envelope.type == "NotificationFailed":
                outcomes.append(
                    {"event_id": event_id, "customer_id": p.customer_id, "channel": p.channel, "outcome": "failed", "at": p.failed_at}
                )
            elif event.envelope.type in SHIPMENT_EVENTS:
                orders.append((event.envelope.type, p))
        if orders:
            await apply_shipment_events(session, orders)
        if moves:
            await session.execute(insert(tier_movements), moves)
        if outcomes:
            await session.execute(insert(notification_outcomes), outcomes)


def _shipment_change(event_type: str, p) -> dict[str, Any]:
    if event_type == "OrderCreated":
        return {
            "status": "ordered",
            "amount": p.amount,
            "currency": p.currency,
            "service_type": p.service_type,
            "lane": p.lane,
            "ordered_at": p.order_date,
            "promised_at": p.promised_delivery_at,
        }
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

SHIPMENT_COLUMNS = (
    "customer_id",
    "tracking_number",
    "status",
    "service_type",
    "lane",
    "amount",
    "currency",
    "ordered_at",
    "shipped_at",
    "promised_at",
    "delivered_at",
    "on_time",
    "delay_minutes",
    "updated_at",
)


async def apply_shipment_events(session: AsyncSession, events: list[tuple[str, Any]]) -> None:
    """Fold a batch of order events into one row per order: one SELECT, one bulk INSERT, one bulk UPDATE."""
    order_ids = list({p.order_id for _, p in events})
    existing: dict[str, dict[str, Any]] = {}
    for start in range(0, len(order_ids), 500):
        rows = (await session.execute(select(shipments).where(shipments.c.order_id.in_(order_ids[start : start + 500])))).mappings().all()
        existing.update({row["order_id"]: dict(row) for row in rows})
    new: dict[str, dict[str, Any]] = {}
    changed: set[str] = set()
    now = utcnow()
    for event_type, p in events:
        row = existing.get(p.order_id) or new.get(p.order_id)
        if row is None:
            row = new[p.order_id] = {c: None for c in SHIPMENT_COLUMNS} | {
                "order_id": p.order_id,
                "customer_id": p.customer_id,
                "status": "ordered",
            }
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

        statement = (
            update(shipments)
            .where(shipments.c.order_id == bindparam("b_order_id"))
            .values({c: bindparam(f"b_{c}") for c in SHIPMENT_COLUMNS})
        )
        await session.execute(statement, [{"b_order_id": oid, **{f"b_{c}": existing[oid][c] for c in SHIPMENT_COLUMNS}} for oid in changed])
