"""Search, customer 360 and complaints through the gateway with the real services behind it."""

from __future__ import annotations

import pytest

for module in ("crm_profile", "crm_complaints", "crm_scoring"):
    pytest.importorskip(module, reason=f"{module} not installed")

from gateway_support import auth, role_headers  # noqa: E402
from real_stack import build_real_stack, register_in_complaints  # noqa: E402


@pytest.fixture
async def stack(database_factory):
    stack = await build_real_stack(database_factory)
    yield stack
    await stack.close()


async def test_call_center_flow_against_the_real_services(stack):
    client, settings = stack.client, stack.settings
    admin, agent = role_headers(settings, "admin"), role_headers(settings, "agent")
    ids = {}
    for name, phone in (("Shanghai Cold Chain Foods", "+8613800138001"), ("Beijing Parts Trading", "+8613900139002")):
        created = await client.post("/api/v1/customers", headers=admin, json={"name": name, "contact": {"name": "Ms Wang", "phone": phone}})
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
        await register_in_complaints(stack.complaints_db, ids[name], phone)
    mine, other = ids["Shanghai Cold Chain Foods"], ids["Beijing Parts Trading"]
    filed = await client.post(
        "/api/v1/complaints",
        headers=agent,
        json={
            "customer_id": mine,
            "category": "delay",
            "description": "two days late",
            "channel": "call_center",
            "tracking_numbers": ["SF5550001"],
        },
    )
    assert filed.status_code == 201, filed.text
    number = filed.json()["number"]
    await client.post(
        "/api/v1/complaints",
        headers=agent,
        json={
            "customer_id": other,
            "category": "damage",
            "description": "broken",
            "channel": "call_center",
            "tracking_numbers": ["SF5550002"],
        },
    )

    by_phone = (await client.get("/api/v1/search", params={"q": "13800138001"}, headers=agent)).json()
    assert [c["id"] for c in by_phone["customers"]] == [mine]
    assert [c["number"] for c in by_phone["complaints"]] == [number] and by_phone["warnings"] == []
    by_number = (await client.get("/api/v1/search", params={"q": number}, headers=agent)).json()
    assert [c["number"] for c in by_number["complaints"]] == [number]
    by_tracking = (await client.get("/api/v1/search", params={"q": "SF5550001"}, headers=agent)).json()
    assert [c["number"] for c in by_tracking["complaints"]] == [number]
    by_name = (await client.get("/api/v1/search", params={"q": "Cold Chain"}, headers=agent)).json()
    assert [c["id"] for c in by_name["customers"]] == [mine]

    view = (await client.get(f"/api/v1/customers/{mine}/360", headers=agent)).json()
    assert view["profile"]["name"] == "Shanghai Cold Chain Foods"
    assert [c["number"] for c in view["open_complaints"]] == [number] and view["open_complaints"][0]["timeline"]
    assert view["warnings"] == [] and "scores" in view["unavailable"]  # nothing scored yet: not an outage

    customer = auth(settings, "customer", "portal-1", customer_id=mine)
    assert (await client.get(f"/api/v1/customers/{other}/360", headers=customer)).status_code == 404
    own = (await client.get(f"/api/v1/customers/{mine}/360", headers=customer)).json()
    assert [c["number"] for c in own["open_complaints"]] == [number]
    dashboard = (await client.get("/api/v1/dashboard", headers=admin)).json()
    assert dashboard["sections"]["complaints"]["total"] == 2
    assert dashboard["sections"]["pareto"] is not None and dashboard["warnings"] == []
