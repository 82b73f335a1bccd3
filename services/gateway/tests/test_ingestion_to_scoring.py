"""End to end: TMS events posted to the gateway reach the real scoring service through Kafka,
and its scores come back through the gateway."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

crm_scoring = pytest.importorskip("crm_scoring", reason="scoring service not installed")

from crm_common.migrations import upgrade  # noqa: E402
from crm_devbroker.testing import wait_until  # noqa: E402
from crm_gateway.main import create_app  # noqa: E402
from crm_gateway.settings import GatewaySettings  # noqa: E402
from gateway_support import FakeUpstreams, migrate, new_event, role_headers  # noqa: E402


async def test_ingested_events_reach_the_scoring_service(database_factory, kafka_settings):
    from crm_scoring.db import ALEMBIC_INI as SCORING_INI
    from crm_scoring.main import create_app as create_scoring_app
    from crm_scoring.settings import ScoringSettings

    scoring_url = await database_factory.create("sqlite", "gwscoring")
    await asyncio.to_thread(upgrade, SCORING_INI, scoring_url)
    scoring_app = create_scoring_app(
        ScoringSettings(database_url=scoring_url, kafka=kafka_settings, run_scheduler=False), start_background=False
    )
    scoring_runtime = scoring_app.state.runtime
    gateway_url = await database_factory.create("sqlite", "gwe2e")
    await migrate(gateway_url)
    settings = GatewaySettings(database_url=gateway_url, kafka=kafka_settings, outbox_poll_interval_s=0.05)
    app = create_app(settings, start_background=False, transports=FakeUpstreams().transports(scoring=httpx.ASGITransport(app=scoring_app)))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    customer = f"E2E-{uuid.uuid4().hex[:6]}"
    try:
        await scoring_runtime.start(relay=False, consumers=True)
        await app.state.runtime.start(relay=True, consumers=False)
        bad = new_event("OrderCreated", customer, amount="-3")
        batch = [
            new_event("OrderCreated", customer, amount="800.00"),
            bad,
            new_event("OrderCreated", customer, amount="200.00"),
            new_event("PaymentReceived", customer),
        ]
        response = await client.post("/api/v1/events", json=batch, headers=role_headers(settings, "tms"))
        assert response.status_code == 207
        assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected", "accepted", "accepted"]

        async def scored():
            r = await client.get(f"/api/v1/scores/{customer}", headers=role_headers(settings, "agent"))
            return r.json() if r.status_code == 200 and (r.json().get("orders_12m") or 0) >= 2 else None

        scores = await wait_until(scored, timeout_s=60, interval_s=0.5)
        assert scores["customer_id"] == customer and scores["orders_12m"] == 2
    finally:
        await client.aclose()
        await app.state.gateway.aclose()
        await app.state.runtime.stop()
        await scoring_runtime.stop()
