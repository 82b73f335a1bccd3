"""Routing to upstreams, identity headers, upstream failures, rate limits."""

from __future__ import annotations

import httpx
import pytest

from crm_common.edge import EdgeTokenVerifier
from crm_gateway.auth import AuthError
from gateway_support import auth, down_transport, role_headers, slow_transport


async def test_routes_to_each_upstream_with_identity_and_correlation(gw, fakes):
    client, settings = gw
    headers = {**auth(settings, "agent", "agent-7", team="hotline"), "X-Correlation-ID": "corr-123"}
    cases = [
        ("/api/v1/customers/C2", "profile", "/customers/C2"),
        ("/api/v1/scores/C2", "scoring", "/scores/C2"),
        ("/api/v1/complaints/K2", "complaints", "/complaints/K2"),
        ("/api/v1/preferences/contacts/P2", "notifications", "/preferences/contacts/P2"),
    ]
    for path, upstream, upstream_path in cases:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        method, seen_path, _, seen_headers = fakes.recorders[upstream].last()
        assert (method, seen_path) == ("GET", upstream_path)
        assert seen_headers["x-actor-id"] == "agent-7"
        assert seen_headers["x-actor-role"] == "agent"
        assert seen_headers["x-actor-team"] == "hotline"
        assert seen_headers["x-correlation-id"] == "corr-123"
        assert "authorization" not in seen_headers
        assert response.headers["x-correlation-id"] == "corr-123"


async def test_every_upstream_request_carries_a_proof_for_that_service_with_the_callers_identity(gw, fakes):
    client, settings = gw
    headers = auth(settings, "customer", "portal-c1", customer_id="C1")
    cases = [
        ("/api/v1/customers/C1", "profile", "customer-profile"),
        ("/api/v1/scores/C1", "scoring", "scoring"),
        ("/api/v1/complaints/K1", "complaints", "complaints"),
        ("/api/v1/deliveries?customer_id=C1", "notifications", "notifications"),
    ]
    for path, upstream, audience in cases:
        assert (await client.get(path, headers={**headers, "X-Actor-Role": "admin"})).status_code == 200, path
        seen = fakes.recorders[upstream].last()[3]
        identity = EdgeTokenVerifier(settings.edge, audience=audience).verify(seen["x-edge-token"])
        assert identity == {"x-actor-id": "C1", "x-actor-subject": "portal-c1", "x-actor-role": "customer", "x-customer-id": "C1"}
        other = "scoring" if audience != "scoring" else "complaints"
        with pytest.raises(AuthError, match="another service"):
            EdgeTokenVerifier(settings.edge, audience=other).verify(seen["x-edge-token"])


async def test_client_cannot_spoof_identity_headers(gw, fakes):
    client, settings = gw
    spoofed = {
        **auth(settings, "customer", "portal-c1", customer_id="C1"),
        "X-Actor-Role": "admin",
        "X-Customer-Id": "C2",
        "X-Actor-Id": "root",
    }
    response = await client.get("/api/v1/customers/C1", headers=spoofed)
    assert response.status_code == 200
    _, _, _, seen = fakes.recorders["profile"].last("/customers/C1")
    assert (seen["x-actor-role"], seen["x-customer-id"], seen["x-actor-id"], seen["x-actor-subject"]) == (
        "customer",
        "C1",
        "C1",
        "portal-c1",
    )


async def test_query_body_and_location_are_passed_through(gw, fakes):
    client, settings = gw
    response = await client.post(
        "/api/v1/complaints",
        json={"customer_id": "C2", "category": "delay", "description": "late", "channel": "call_center"},
        headers=role_headers(settings, "agent"),
    )
    assert response.status_code == 201
    assert response.headers["location"].startswith("/api/v1/complaints/K")
    assert response.json()["customer_id"] == "C2"
    response = await client.get("/api/v1/customers/search", params={"phone": "13900000002"}, headers=role_headers(settings, "agent"))
    assert [c["id"] for c in response.json()["items"]] == ["C2"]
    assert fakes.recorders["profile"].last("/customers/search")[2] == {"phone": "13900000002"}


async def test_upstream_down_gives_503_problem_and_retries_only_idempotent(fakes, make_gateway):
    calls: list[str] = []
    client, settings, _ = await make_gateway(
        fakes.transports(complaints=down_transport(calls)), upstream_retries=2, upstream_retry_backoff_s=0.0
    )
    response = await client.get("/api/v1/complaints/K1", headers=role_headers(settings, "agent"))
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["upstream"] == "complaints" and body["status"] == 503 and "retry-after" in response.headers
    assert calls == ["GET", "GET", "GET"]  # one try + two retries
    calls.clear()
    response = await client.post(
        "/api/v1/complaints",
        json={"customer_id": "C1", "category": "x", "description": "y", "channel": "web"},
        headers=role_headers(settings, "agent"),
    )
    assert response.status_code == 503
    assert calls == ["POST"]  # never retried


async def test_upstream_slow_gives_504(fakes, make_gateway):
    client, settings, _ = await make_gateway(fakes.transports(scoring=slow_transport()), upstream_retries=0)
    response = await client.get("/api/v1/scores/C1", headers=role_headers(settings, "agent"))
    assert response.status_code == 504
    assert response.json()["type"] == "urn:crm:problem:upstream-timeout"


async def test_upstream_garbage_gives_502(fakes, make_gateway):
    def broken(request):
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    client, settings, _ = await make_gateway(fakes.transports(scoring=httpx.MockTransport(broken)), upstream_retries=0)
    response = await client.get("/api/v1/scores/C1", headers=role_headers(settings, "agent"))
    assert response.status_code == 502


async def test_retry_recovers_from_one_503(fakes, make_gateway):
    answers = iter([httpx.Response(503), httpx.Response(200, json={"customer_id": "C1", "tier": "vip"})])
    client, settings, _ = await make_gateway(
        fakes.transports(scoring=httpx.MockTransport(lambda r: next(answers))), upstream_retry_backoff_s=0.0
    )
    response = await client.get("/api/v1/scores/C1", headers=role_headers(settings, "agent"))
    assert response.status_code == 200 and response.json()["tier"] == "vip"


async def test_unknown_route_404_and_wrong_method_405(gw):
    client, settings = gw
    assert (await client.get("/api/v1/nothing-here", headers=role_headers(settings, "admin"))).status_code == 404
    response = await client.delete("/api/v1/events", headers=role_headers(settings, "admin"))
    assert response.status_code == 405 and "POST" in response.headers["allow"]


async def test_no_or_bad_credentials_401(gw):
    client, settings = gw
    assert (await client.get("/api/v1/customers/C1")).status_code == 401
    response = await client.get("/api/v1/customers/C1", headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get("/api/v1/customers/C1", headers={"X-API-Key": "crm_dead_beef"})).status_code == 401


async def test_api_key_client(fakes, make_gateway):
    from crm_gateway.auth import generate_api_key

    plaintext, record = generate_api_key("tms-east", "tms")
    client, settings, _ = await make_gateway(api_keys=[{**record.__dict__}])
    assert (await client.get("/api/v1/customers/C1", headers={"X-API-Key": plaintext})).status_code == 403
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"ApiKey {plaintext}"})
    assert me.json()["role"] == "tms" and me.json()["method"] == "api_key"


async def test_rate_limit_per_client_and_role_gives_429_with_retry_after(make_gateway):
    client, settings, _ = await make_gateway(rate_limits={"customer": (0.5, 3), "agent": (100, 100), "anonymous": (1, 5)})
    customer = role_headers(settings, "customer")
    statuses = [(await client.get("/api/v1/customers/C1", headers=customer)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get("/api/v1/customers/C1", headers=customer)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # another client and another role are not affected
    other_customer = auth(settings, "customer", "portal-c2", customer_id="C2")
    assert (await client.get("/api/v1/customers/C2", headers=other_customer)).status_code == 200
    assert (await client.get("/api/v1/customers/C1", headers=role_headers(settings, "agent"))).status_code == 200


def _requests_counted(route: str, status: str) -> float:
    from prometheus_client import REGISTRY

    labels = {"service": "gateway", "method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("crm_http_requests_total", labels) or 0.0


async def test_forwarded_requests_are_counted_under_their_rule(gw):
    """Forwarded requests skip the framework's router (the middleware sends them straight to the proxy handler);
    the metrics still name the route, by the rule that matched rather than one catch-all."""
    client, settings = gw
    before = _requests_counted("/api/v1/customers/{customer_id}", "200")
    assert (await client.get("/api/v1/customers/C2", headers=role_headers(settings, "agent"))).status_code == 200
    assert _requests_counted("/api/v1/customers/{customer_id}", "200") == before + 1


async def test_an_unexpected_error_while_forwarding_is_a_500_problem(fakes, make_gateway):
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug, not an upstream failure")

    _, settings, app = await make_gateway(fakes.transports(profile=httpx.MockTransport(broken)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://gateway") as client:
        response = await client.get("/api/v1/customers/C2", headers=role_headers(settings, "agent"))
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json") and response.json()["status"] == 500
