"""The gateway in front of the real customer-profile service (in-process)."""

from __future__ import annotations

import pytest

pytest.importorskip("crm_profile", reason="customer-profile service not installed")

from gateway_support import auth, gateway_before_real_profile, role_headers  # noqa: E402


async def test_gateway_routes_to_the_real_profile_service_with_object_checks(database_factory, gateway_db):
    async with gateway_before_real_profile(database_factory, gateway_db, "sqlite") as (client, settings):
        admin = role_headers(settings, "admin")
        created = []
        for name, phone in (("Real Acme Logistics", "13800138000"), ("Real Other Co", "13900139000")):
            response = await client.post(
                "/api/v1/customers", json={"name": name, "contact": {"name": "Ms Li", "phone": phone}}, headers=admin
            )
            assert response.status_code == 201, response.text
            assert response.headers["location"] == f"/api/v1/customers/{response.json()['id']}"
            created.append(response.json()["id"])
        mine, other = created
        agent = role_headers(settings, "agent")
        found = await client.get("/api/v1/customers/search", params={"phone": "13800138000"}, headers=agent)
        assert [c["id"] for c in found.json()["items"]] == [mine]
        read = await client.get(f"/api/v1/customers/{mine}", headers=agent)
        assert read.status_code == 200 and read.headers.get("etag")
        customer = auth(settings, "customer", "portal-real", customer_id=mine)
        assert (await client.get(f"/api/v1/customers/{mine}", headers=customer)).status_code == 200
        refused = await client.get(f"/api/v1/customers/{other}", headers=customer)
        assert refused.status_code == 404 and "Real Other" not in refused.text
        assert (await client.get("/api/v1/customers/search", params={"q": "Real"}, headers=customer)).status_code == 403
        view = await client.get(f"/api/v1/customers/{mine}/360", headers=customer)
        assert view.status_code == 200 and view.json()["profile"]["name"] == "Real Acme Logistics"
        spec = (await client.get("/api/v1/openapi.json")).json()
        assert spec["paths"]["/api/v1/customers/search"]["get"]["x-upstream"] == "profile"
        assert "/api/v1/customers/{customer_id}/contacts" in spec["paths"]
        assert not any(
            p.startswith("/api/v1/") and p.endswith(("/healthz", "/readyz")) for p in spec["paths"]
        )  # upstream ops stay internal
        for item in spec["paths"].values():  # every $ref of the merged document resolves
            for ref in __import__("re").findall(r'"\$ref": "#/components/schemas/([^"]+)"', __import__("json").dumps(item)):
                assert ref in spec["components"]["schemas"], ref


async def test_idempotency_key_through_the_gateway_creates_one_customer(database_factory, gateway_db, db_kind):
    """The issue's reproduction: POST /api/v1/customers twice with one Idempotency-Key made two customers. The gateway
    forwards the key and the replay marker; the caller's identity scopes the key."""
    async with gateway_before_real_profile(database_factory, gateway_db, db_kind) as (client, settings):
        admin = role_headers(settings, "admin") | {"Idempotency-Key": "gw-retry-1"}
        body = {"name": "Gateway Retry Freight"}
        first = await client.post("/api/v1/customers", json=body, headers=admin)
        again = await client.post("/api/v1/customers", json=body, headers=admin)
        assert first.status_code == again.status_code == 201, first.text
        assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
        assert again.headers["location"] == first.headers["location"] == f"/api/v1/customers/{first.json()['id']}"
        reused = await client.post("/api/v1/customers", json=body | {"region": "North China"}, headers=admin)
        assert reused.status_code == 422 and reused.json()["type"] == "urn:crm:problem:idempotency-key-reused"
        another_admin = auth(settings, "admin", "admin-2") | {"Idempotency-Key": "gw-retry-1"}
        theirs = await client.post("/api/v1/customers", json=body, headers=another_admin)
        assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
        found = await client.get(
            "/api/v1/customers/search", params={"name": "Gateway Retry Freight"}, headers=role_headers(settings, "agent")
        )
        assert sorted(c["id"] for c in found.json()["items"]) == sorted([first.json()["id"], theirs.json()["id"]])


async def test_service_level_agreement_through_the_gateway(database_factory, gateway_db):
    """Issue 20 point 3: account managers (their own customers) and admins set a customer's agreed targets; agents and
    customers read them only; bad input is the profile's 422."""
    async with gateway_before_real_profile(database_factory, gateway_db, "sqlite") as (client, settings):
        admin = role_headers(settings, "admin")
        created = await client.post("/api/v1/customers", json={"name": "SLA Freight"}, headers=admin)
        cid = created.json()["id"]
        url = f"/api/v1/customers/{cid}/service-level-agreement"
        manager = auth(settings, "account_manager", "am-sla", customers=[cid])
        stranger = auth(settings, "account_manager", "am-other", customers=["C-ELSEWHERE"])
        body = {"targets": {"on_time_delivery_pct": 97, "complaints_per_100_orders": 1}}
        put = await client.put(url, json=body, headers=manager | {"If-Match": '"1"'})
        assert put.status_code == 200, put.text
        assert put.json()["targets"] == {"on_time_delivery_pct": 97.0, "complaints_per_100_orders": 1.0}
        assert put.headers["etag"] == '"2"'
        for headers in (stranger, role_headers(settings, "agent"), auth(settings, "customer", "portal-sla", customer_id=cid)):
            refused = await client.put(url, json={"targets": {}}, headers=headers | {"If-Match": '"2"'})
            assert refused.status_code in (403, 404), refused.text
        seen = await client.get(url, headers=auth(settings, "customer", "portal-sla", customer_id=cid))
        assert seen.status_code == 200 and seen.json()["targets"]["on_time_delivery_pct"] == 97.0
        for targets in ({"on_time": 1}, {"fill_rate_pct": 101}, {"loss_rate_pct": -0.1}):
            bad = await client.put(url, json={"targets": targets}, headers=admin | {"If-Match": '"2"'})
            assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json"), targets
        assert (await client.get(url, headers=admin)).json()["version"] == 2
