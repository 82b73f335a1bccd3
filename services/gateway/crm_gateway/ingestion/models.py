"""The ids of ingested events (duplicates are answered `duplicate` until the id is forgotten)."""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from crm_common.db import UTCDateTime
from crm_gateway.db import metadata

ingested_events = Table(
    "ingested_events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("producer", String(100), nullable=False),
    Column("received_at", UTCDateTime, nullable=False, index=True),
)
