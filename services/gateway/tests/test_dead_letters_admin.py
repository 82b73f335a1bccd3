"""The dead-letter admin endpoints through the gateway: the real scoring app behind it, admin role only."""

import asyncio

import httpx
from sqlalchemy import func, select

from crm_common.consumer import Delivery, InboxProcessor
from crm_common.events import encode_envelope, make_event
from crm_common.events.logistics import OrderCreated
from crm_common.migrations import upgrade
from crm_devbroker.testing import CollectingDeadLetters
from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings
from gateway_support import FakeUpstreams, migrate, role_headers

BASE = "/api/v1/admin/dead-letters"


async def _scoring_is_read_only(self, session, events):
    raise RuntimeError("injected fault: the scoring database is read-only for maintenance")


async def test_admin_lists_shows_and_replays_a_services_dead_letters_through_the_gateway(database_factory, monkeypatch):
    from crm_scoring.db import ALEMBIC_INI
    from crm_scoring.main import create_app as scoring_app
    from crm_scoring.scoring.models import orders
    from crm_scoring.settings import ScoringSettings

    scoring_url = await database_factory.create("sqlite", "dlqscoring")
    await asyncio.to_thread(upgrade, ALEMBIC_INI, scoring_url)
    scoring = scoring_app(
        ScoringSettings(database_url=scoring_url, run_scheduler=False, run_consumers=False, run_outbox_relay=False), start_background=False
    )
    runtime = scoring.state.runtime
    monkeypatch.setattr(type(runtime.consumers[0].handler), "handle_batch", _scoring_is_read_only)
    order = make_event(
        OrderCreated(order_id="o-7", customer_id="C9", order_date="2026-11-02T08:00:00Z", amount=40), key="C9", producer="test"
    )
    gives_up = InboxProcessor(runtime.db, runtime.consumers[0].handler, CollectingDeadLetters(), max_attempts=1)
    await gives_up.process([Delivery("logistics.orders", 2, 41, b"C9", encode_envelope(order))])

    gateway_url = await database_factory.create("sqlite", "dlqgw")
    await migrate(gateway_url)
    settings = GatewaySettings(database_url=gateway_url)
    gateway = create_app(settings, start_background=False, transports=FakeUpstreams().transports(scoring=httpx.ASGITransport(app=scoring)))
    admin, agent = role_headers(settings, "admin"), role_headers(settings, "agent")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway") as client:
            assert (await client.get(f"{BASE}/scoring", headers=agent)).status_code == 403
            listed = await client.get(f"{BASE}/scoring", headers=admin)
            assert listed.status_code == 200, listed.text
            (item,) = listed.json()["items"]
            assert item["error_type"] == "RuntimeError" and (item["topic"], item["partition"], item["offset"]) == (
                "logistics.orders",
                2,
                41,
            )
            shown = (await client.get(f"{BASE}/scoring/{item['id']}", headers=admin)).json()
            assert shown["event"]["payload"]["order_id"] == "o-7"

            refused = await client.post(f"{BASE}/scoring/{item['id']}/replay", headers=admin)  # not fixed yet
            assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
            monkeypatch.undo()  # the fix: the database is writable again
            replayed = await client.post(f"{BASE}/scoring/{item['id']}/replay", headers=admin)
            assert replayed.status_code == 200 and replayed.json()["outcome"] == "applied"
            assert (await client.post(f"{BASE}/scoring/{item['id']}/replay", headers=admin)).status_code == 404  # once
            assert (await client.get(f"{BASE}/scoring", headers=admin)).json()["items"] == []
            assert len((await client.get(f"{BASE}/scoring", params={"state": "replayed"}, headers=admin)).json()["items"]) == 1
            assert (await client.get(f"{BASE}/scoring/0", headers=admin)).status_code == 422
            assert (await client.get(f"{BASE}/scoring/99", headers=admin)).status_code == 404

            own = await client.get(f"{BASE}/gateway", headers=admin)  # the gateway's own consumer, answered by the gateway
            assert own.status_code == 200 and own.json()["items"] == []
            assert (await client.post(f"{BASE}/gateway/replay", headers=admin)).json() == {"applied": 0, "already_applied": 0, "failed": []}
            assert (await client.get(f"{BASE}/gateway", headers=agent)).status_code == 403
        async with runtime.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(orders).where(orders.c.order_id == "o-7")) == 1
    finally:
        await gateway.state.gateway.aclose()
        await gateway.state.runtime.db.dispose()
        await runtime.stop()


async def test_the_gateways_dead_letters_are_not_reachable_outside_its_authenticated_api(make_gateway):
    client, settings, _ = await make_gateway()
    assert (await client.get("/admin/dead-letters/gateway")).status_code == 404
    assert (await client.get(f"{BASE}/gateway")).status_code == 401


async def test_filters_with_control_characters_are_refused_not_sent_to_the_database(make_gateway):
    client, settings, _ = await make_gateway()
    admin = role_headers(settings, "admin")
    listed = await client.get(f"{BASE}/gateway", params={"consumer": "a\x00b"}, headers=admin)
    assert listed.status_code == 422 and listed.json()["errors"][0]["loc"] == ["query", "consumer"]
    replayed = await client.post(f"{BASE}/gateway/replay", json={"topic": "x\ny"}, headers=admin)
    assert replayed.status_code == 422
