"""The gateway's own small database: outbox/inbox (shared tables) and the ids of ingested events."""
from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, Numeric, String, Table

from crm_common.db import UTCDateTime

metadata = MetaData()

ingested_events = Table(
    "ingested_events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("producer", String(100), nullable=False),
    Column("received_at", UTCDateTime, nullable=False, index=True),
)

# read models for the dashboard, fed by the gateway's own consumer (crm_gateway.readmodels)
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
