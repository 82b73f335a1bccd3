"""The gateway's runtime: its outbox relay (publishes ingested events), the consumer of its dashboard read models and
the purge of old ingested event ids and shipments (a background loop)."""

from __future__ import annotations

import datetime as dt

from crm_common.runtime import ServiceRuntime
from crm_gateway.dashboard.handlers import DashboardReadModel
from crm_gateway.ingestion.service import purge_loop
from crm_gateway.settings import GatewaySettings


def build_runtime(settings: GatewaySettings | None = None) -> ServiceRuntime:
    settings = settings or GatewaySettings()
    runtime = ServiceRuntime(settings, handlers=[DashboardReadModel(shipments=settings.shipments_read_model)])
    retention = dt.timedelta(days=settings.ingest_dedup_retention_days)
    shipments_retention = dt.timedelta(days=settings.shipments_retention_days)
    runtime.add_background_loop(
        "ingest-purge", lambda: purge_loop(runtime, retention, settings.ingest_purge_interval_s, shipments_retention)
    )
    return runtime
