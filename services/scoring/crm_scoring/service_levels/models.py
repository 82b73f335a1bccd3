"""The stored service-level record: one row per customer and calendar month (UTC) of the orders it measures."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, String, Table

from crm_common.db import UTCDateTime
from crm_scoring.db import metadata
from crm_scoring.scoring.models import ID

service_level_months = Table(
    "service_level_months",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("month", String(7), primary_key=True),  # YYYY-MM
    Column("orders", Integer, nullable=False),
    Column("on_time_pickup_pct", Float),
    Column("on_time_delivery_pct", Float),
    Column("order_completion_pct", Float),
    Column("damage_rate_pct", Float),
    Column("loss_rate_pct", Float),
    Column("fill_rate_pct", Float),
    Column("urgent_orders", Integer, nullable=False),
    Column("urgent_completion_pct", Float),
    Column("documents_on_time_pct", Float),
    Column("billing_corrections", Integer, nullable=False),
    Column("complaints", Integer, nullable=False),
    Column("complaints_per_100_orders", Float),
    Column("mean_resolution_hours", Float),
    Column("computed_at", UTCDateTime, nullable=False),
)
Index("ix_service_level_months_month", service_level_months.c.month, service_level_months.c.customer_id)

MEASURE_COLUMNS = [c.name for c in service_level_months.columns if c.name not in ("customer_id", "month", "computed_at")]

# the current judgement of each judged customer-month (service_levels/judgement.py): its verdict, the agreed tier and
# the missed targets (ServiceLevelBreached is sent again only when the set of missed measures changes)
VERDICTS = ("missed", "met", "not_measured")  # not_measured: no target of the customer had a value that month
service_level_breaches = Table(
    "service_level_breaches",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("tier", String(20)),
    Column("missed", JSON, nullable=False),
    Column("announced_at", UTCDateTime, nullable=False),  # when judged (and announced, for a new set of missed measures)
    Column("verdict", String(12), nullable=False, server_default="missed"),
)
Index("ix_service_level_breaches_month", service_level_breaches.c.month)
