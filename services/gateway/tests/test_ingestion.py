"""POST /api/v1/events: per-event results, duplicates, the outbox, and publication to Kafka."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from crm_common.outbox import outbox_table
from crm_devbroker.testing import read_events
from crm_gateway.ingestion.models import ingested_events
from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings
from gateway_support import FakeUpstreams, migrate, new_event, role_headers


@pytest.fixture
async def ingest_gateway(database_factory, db_kind):
    url = await database_factory.create(db_kind, "gwingest")
    await migrate(url)
    settings = GatewaySettings(database_url=url, ingest_max_batch=10)
    app = create_app(settings, start_background=False, transports=FakeUpstreams().transports())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    yield client, settings, app.state.runtime
    await client.aclose()
    await app.state.gateway.aclose()
    await app.state.runtime.db.dispose()


async def _count(runtime, table, *where) -> int:
    async with runtime.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where)))


async def test_batch_with_one_bad_event_accepts_the_rest_and_reports_it(ingest_gateway):
    client, settings, runtime = ingest_gateway
    good = [new_event("OrderCreated", "C1"), new_event("ShipmentDelayed", "C2"), new_event("PaymentOverdue", "C1")]
    bad = new_event("OrderCreated", "C1")
    del bad["payload"]["amount"]
    batch = [good[0], bad, good[1], good[2]]
    response = await client.post("/api/v1/events", json=batch, headers=role_headers(settings, "tms"))
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 0, 1)
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted", "accepted"]
    assert "amount" in body["results"][1]["reason"] and body["results"][1]["event_id"] == bad["event_id"]
    assert body["results"][3]["topic"] == "finance.payments" and body["results"][0]["topic"] == "logistics.orders"
    assert await _count(runtime, outbox_table) == 3
    assert await _count(runtime, ingested_events) == 3
    async with runtime.db.sessions() as session:
        keys = (await session.execute(select(outbox_table.c.event_id, outbox_table.c.key))).all()
    assert {k.event_id: k.key for k in keys} == {good[0]["event_id"]: "C1", good[1]["event_id"]: "C2", good[2]["event_id"]: "C1"}


async def test_duplicate_event_ids_are_reported_as_duplicates(ingest_gateway):
    client, settings, runtime = ingest_gateway
    tms = role_headers(settings, "tms")
    first = new_event("OrderShipped", "C1")
    response = await client.post("/api/v1/events", json=first, headers=tms)
    assert response.status_code == 200 and response.json()["results"][0]["status"] == "accepted"
    again = await client.post("/api/v1/events", json={"events": [first, new_event("OrderDelivered", "C1")]}, headers=tms)
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "accepted"]
    twice = new_event("OrderCreated", "C3")
    in_batch = await client.post("/api/v1/events", json=[twice, twice], headers=tms)
    assert [r["status"] for r in in_batch.json()["results"]] == ["accepted", "duplicate"]
    assert await _count(runtime, outbox_table) == 3


async def test_envelope_defaults_and_refusals(ingest_gateway):
    client, settings, runtime = ingest_gateway
    tms = role_headers(settings, "tms")
    wrong_key = {**new_event("OrderCreated", "C1"), "key": "C2"}
    not_logistics = {**new_event("OrderCreated", "C1"), "type": "ComplaintFiled"}
    no_id = new_event("OrderCreated", "C1")
    del no_id["event_id"]
    bad_id = {**new_event("OrderCreated", "C1"), "event_id": "123"}
    future_version = {**new_event("OrderCreated", "C1"), "version": 9}
    ok = {**new_event("OrderCreated", "C1"), "producer": "wms-shanghai"}
    response = await client.post("/api/v1/events", json=[wrong_key, not_logistics, no_id, bad_id, future_version, "nope", ok], headers=tms)
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * 6 + ["accepted"]
    reasons = [r["reason"] for r in results[:6]]
    assert "key" in reasons[0] and "type" in reasons[1] and "event_id" in reasons[2] and "UUID" in reasons[3]
    assert "version" in reasons[4] and "object" in reasons[5]
    async with runtime.db.sessions() as session:
        body = await session.scalar(select(outbox_table.c.body))
    import orjson

    envelope = orjson.loads(body)
    assert envelope["producer"] == "wms-shanghai" and envelope["key"] == "C1" and envelope["occurred_at"]


async def test_only_tms_and_admin_may_post_and_batches_are_bounded(ingest_gateway):
    client, settings, _ = ingest_gateway
    for role in ("agent", "customer", "account_manager"):
        assert (await client.post("/api/v1/events", json=[new_event()], headers=role_headers(settings, role))).status_code == 403
    assert (await client.post("/api/v1/events", json=[new_event()], headers=role_headers(settings, "admin"))).status_code == 200
    too_many = [new_event() for _ in range(settings.ingest_max_batch + 1)]
    response = await client.post("/api/v1/events", json=too_many, headers=role_headers(settings, "tms"))
    assert response.status_code == 413 and response.json()["max_batch"] == 10
    assert (await client.post("/api/v1/events", content=b"{not json", headers=role_headers(settings, "tms"))).status_code == 400


@pytest.mark.parametrize("db_kind", ["postgres"])
async def test_accepted_events_survive_a_missing_relay_and_reach_kafka_keyed_by_customer(database_factory, db_kind, kafka_settings):
    url = await database_factory.create(db_kind, "gwkafka")
    await migrate(url)
    settings = GatewaySettings(database_url=url, kafka=kafka_settings)
    app = create_app(settings, start_background=False, transports=FakeUpstreams().transports())
    runtime = app.state.runtime
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    try:
        events = [new_event("OrderCreated", "C1"), new_event("OrderShipped", "C2"), new_event("PaymentReceived", "C1")]
        bad = new_event("ShipmentDelayed", "C1", delay_minutes=-5)
        response = await client.post("/api/v1/events", json=events + [bad], headers=role_headers(settings, "tms"))
        assert response.status_code == 207
        # no relay yet (the broker "away"): the accepted events wait in the gateway's own outbox
        assert await _count(runtime, outbox_table, outbox_table.c.published_at.is_(None)) == 3
        await runtime.start(relay=True, consumers=False)
        orders = await read_events(kafka_settings, "logistics.orders", count=2, timeout_s=20)
        payments = await read_events(kafka_settings, "finance.payments", count=1, timeout_s=20)
        assert sorted((str(e.event_id), e.type, e.key) for e in orders) == sorted(
            (e["event_id"], e["type"], e["payload"]["customer_id"]) for e in events[:2]
        )
        assert [(str(e.event_id), e.key) for e in payments] == [(events[2]["event_id"], "C1")]
        assert orders[0].parsed().customer_id == orders[0].key
        assert str(bad["event_id"]) not in {str(e.event_id) for e in orders}
    finally:
        await client.aclose()
        await app.state.gateway.aclose()
        await runtime.stop()


async def test_old_event_ids_are_forgotten_after_the_retention(ingest_gateway):
    import datetime as dt

    from sqlalchemy import update

    from crm_gateway.ingestion.service import purge_ingested

    client, settings, runtime = ingest_gateway
    tms = role_headers(settings, "tms")
    old, recent = new_event("OrderCreated", "C1"), new_event("OrderCreated", "C2")
    assert (await client.post("/api/v1/events", json=[old, recent], headers=tms)).json()["accepted"] == 2
    async with runtime.db.transaction() as session:
        await session.execute(
            update(ingested_events)
            .where(ingested_events.c.event_id == old["event_id"])
            .values(received_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=31))
        )
    assert await purge_ingested(runtime, dt.timedelta(days=30)) == 1
    again = await client.post("/api/v1/events", json=[recent], headers=tms)
    assert again.json()["results"][0]["status"] == "duplicate"


async def test_gateway_consumer_feeds_the_dashboard_from_kafka(database_factory, kafka_settings):
    from crm_common.bus import KafkaPublisher
    from crm_common.events import make_event
    from crm_devbroker.testing import wait_until
    from gateway_support import dashboard_events

    url = await database_factory.create("sqlite", "gwdash")
    await migrate(url)
    sources = {"pareto": "scoring:/reports/pareto"}  # notifications and tier movements from the read models only
    settings = GatewaySettings(database_url=url, kafka=kafka_settings, dashboard_sources=sources)
    app = create_app(settings, start_background=False, transports=FakeUpstreams().transports())
    runtime = app.state.runtime
    assert [c.handler.name for c in runtime.consumers] == ["gateway-dashboard"]
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    publisher = KafkaPublisher(kafka_settings, client_id="test-scoring")
    try:
        for payload in dashboard_events():
            await publisher.publish(make_event(payload, key=payload.customer_id, producer="test"))
        await runtime.start(relay=False, consumers=True)

        async def shown():
            body = (await client.get("/api/v1/dashboard", headers=role_headers(settings, "admin"))).json()
            section = body["sections"]["notifications"]  # None while the read model is busy: poll again
            channels = section["by_channel"] if section else []
            return body if sum(c["sent"] + c["failed"] for c in channels) == 9 else None

        body = await wait_until(shown, timeout_s=40, interval_s=0.3)
        assert sum(m["count"] for m in body["sections"]["tier_movements"]["movements"]) == 3
    finally:
        await publisher.stop()
        await client.aclose()
        await app.state.gateway.aclose()
        await runtime.stop()
