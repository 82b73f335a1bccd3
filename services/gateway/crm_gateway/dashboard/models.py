"""The gateway's own read models: tier movements and notification outcomes for the dashboard, recent shipments per
customer for the customer 360 (fed by dashboard/handlers.py)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, Numeric, String, Table

from crm_common.db import UTCDateTime
from crm_gateway.db import metadata

# read models for the dashboard, fed by the gateway's own consumer (crm_gateway.dashboard.handlers)
tier_movements = Table(
    "tier_movements",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("old_tier", String(30), nullable=True),
    Column("new_tier", String(30), nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
)
Index("ix_tier_movements_changed_at", tier_movements.c.changed_at)

notification_outcomes = Table(
    "notification_outcomes",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("channel", String(50), nullable=False),
    Column("outcome", String(10), nullable=False),  # sent | failed
    Column("at", UTCDateTime, nullable=False),
)
Index("ix_notification_outcomes_at", notification_outcomes.c.at)

# recent shipments per customer for the 360 view, from logistics.orders
shipments = Table(
    "shipments",
    metadata,
    Column("order_id", String(100), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("tracking_number", String(100), nullable=True),
    Column("status", String(20), nullable=False),
    Column("service_type", String(30), nullable=True),
    Column("lane", String(200), nullable=True),
    Column("amount", Numeric(14, 2), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("ordered_at", UTCDateTime, nullable=True),
    Column("shipped_at", UTCDateTime, nullable=True),
    Column("promised_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("on_time", Boolean, nullable=True),
    Column("delay_minutes", Integer, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_shipments_customer", shipments.c.customer_id, shipments.c.updated_at)
