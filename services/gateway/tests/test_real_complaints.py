"""The gateway in front of the real complaints service (in-process, SQLite): a customer token never
sees another customer's complaint, whatever id, number, phone or tracking number it asks for."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("crm_complaints", reason="complaints service not installed")
complaints_support = pytest.importorskip("complaints_support", reason="complaints test helpers not on the path")

from crm_gateway.main import create_app  # noqa: E402
from crm_gateway.settings import GatewaySettings  # noqa: E402
from gateway_support import FakeUpstreams, auth, role_headers  # noqa: E402


async def test_customer_tokens_against_the_real_complaints_service(database_factory, gateway_db):
    env = await complaints_support.make_env(database_factory, "sqlite")
    await complaints_support.seed_customer(env.db, "X1", phone="+8613800000011")
    await complaints_support.seed_customer(env.db, "X2", phone="+8613900000022")
    settings = GatewaySettings(database_url=gateway_db)
    fakes = FakeUpstreams(
        extra_customers={c: {"id": c, "name": f"Real {c}", "account_manager": "am-9", "status": "active"} for c in ("X1", "X2")}
    )
    app = create_app(settings, start_background=False, transports=fakes.transports(complaints=httpx.ASGITransport(app=env.app)))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    try:
        agent = role_headers(settings, "agent")
        filed = {}
        for customer, tracking in (("X1", "SFX100"), ("X2", "SFX200")):
            response = await client.post(
                "/api/v1/complaints",
                headers=agent,
                json={
                    "customer_id": customer,
                    "category": "delay",
                    "description": f"late parcel {tracking}",
                    "channel": "call_center",
                    "tracking_numbers": [tracking],
                },
            )
            assert response.status_code == 201, response.text
            filed[customer] = response.json()
        x1 = auth(settings, "customer", "portal-x1", customer_id="X1")
        mine = await client.get(f"/api/v1/complaints/{filed['X1']['id']}", headers=x1)
        assert mine.status_code == 200 and mine.json()["number"] == filed["X1"]["number"]
        assert "clocks" not in mine.json()  # the complaints service's customer view
        timeline = await client.get(f"/api/v1/complaints/{filed['X1']['id']}/timeline", headers=x1)
        assert timeline.status_code == 200 and timeline.json()

        other = filed["X2"]
        for path in (f"/api/v1/complaints/{other['id']}", f"/api/v1/complaints/{other['id']}/timeline"):
            response = await client.get(path, headers=x1)
            assert response.status_code == 404 and other["number"] not in response.text and "SFX200" not in response.text
        assert (await client.post(f"/api/v1/complaints/{other['id']}/survey", json={"score": 1}, headers=x1)).status_code == 404
        for params in ({"number": other["number"]}, {"tracking_number": "SFX200"}, {"phone": "+8613900000022"}, {}):
            response = await client.get("/api/v1/complaints/lookup", params=params, headers=x1)
            assert response.status_code in (200, 404)
            assert other["number"] not in response.text and "SFX200" not in response.text
        own = await client.get("/api/v1/complaints/lookup", headers=x1)
        assert [i["complaint"]["number"] for i in own.json()] == [filed["X1"]["number"]]
        view = await client.get("/api/v1/customers/X1/360", headers=x1)
        assert [c["number"] for c in view.json()["open_complaints"]] == [filed["X1"]["number"]]
        assert (await client.get("/api/v1/customers/X2/360", headers=x1)).status_code == 404
        refused = await client.post(
            "/api/v1/complaints", headers=x1, json={"customer_id": "X2", "category": "delay", "description": "x", "channel": "web"}
        )
        assert refused.status_code == 403
        own_filed = await client.post(
            "/api/v1/complaints", headers=x1, json={"category": "damage", "description": "box crushed", "channel": "web"}
        )
        assert own_filed.status_code == 201
        assert (await client.get(own_filed.headers["location"], headers=x1)).status_code == 200
    finally:
        await client.aclose()
        await app.state.gateway.aclose()
        await app.state.runtime.db.dispose()
        await complaints_support.close_env(env)
