"""The client address (anonymous rate limits, X-Forwarded-For upstream) comes from X-Forwarded-For only when the
peer is a configured proxy (GATEWAY_TRUSTED_PROXIES, none by default)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from crm_gateway.auth import mint_token
from crm_gateway.settings import GatewaySettings

ANONYMOUS_ROUTE = "/api/v1/auth/demo-users"


def client_from(app, peer: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(peer, 40000)), base_url="http://gateway")


async def test_rotating_x_forwarded_for_does_not_escape_the_anonymous_limit(make_gateway):
    client, _, _ = await make_gateway(rate_limits={"anonymous": (0.01, 3)})
    statuses = [(await client.get(ANONYMOUS_ROUTE, headers={"X-Forwarded-For": f"203.0.113.{n}"})).status_code for n in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]


async def test_x_forwarded_for_is_honoured_from_a_configured_proxy(make_gateway):
    _, _, app = await make_gateway(rate_limits={"anonymous": (0.01, 2)}, trusted_proxies=["10.0.0.0/24"])
    async with client_from(app, "10.0.0.7") as proxy, client_from(app, "198.51.100.9") as stranger:
        first = [(await proxy.get(ANONYMOUS_ROUTE, headers={"X-Forwarded-For": "203.0.113.1"})).status_code for _ in range(3)]
        # another client behind the proxy has a bucket of its own; the proxy's own address is not what counts
        second = (await proxy.get(ANONYMOUS_ROUTE, headers={"X-Forwarded-For": "203.0.113.1, 203.0.113.2"})).status_code
        # a peer that is not a configured proxy is counted by its own address whatever it claims
        spoofed = [(await stranger.get(ANONYMOUS_ROUTE, headers={"X-Forwarded-For": f"203.0.113.{n}"})).status_code for n in (3, 4, 5)]
    assert first == [200, 200, 429]
    assert second == 200
    assert spoofed == [200, 200, 429]


async def test_upstreams_get_the_resolved_client_address(make_gateway, fakes):
    _, settings, app = await make_gateway(trusted_proxies=["10.0.0.7"])
    token = mint_token(settings.signing_key(), subject="agent-1", role="agent", issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    auth = {"Authorization": f"Bearer {token}"}
    async with client_from(app, "10.0.0.7") as proxy, client_from(app, "198.51.100.9") as stranger:
        assert (await proxy.get("/api/v1/customers/C1", headers={**auth, "X-Forwarded-For": "203.0.113.1"})).status_code == 200
        assert fakes.recorders["profile"].last("/customers/C1")[3]["x-forwarded-for"] == "203.0.113.1"
        assert (await stranger.get("/api/v1/customers/C1", headers={**auth, "X-Forwarded-For": "203.0.113.1"})).status_code == 200
        assert fakes.recorders["profile"].last("/customers/C1")[3]["x-forwarded-for"] == "198.51.100.9"


@pytest.mark.parametrize("entry", ["*", "10.0.0.300", "gateway.local"])
def test_trusted_proxies_must_be_addresses_or_networks(entry):
    with pytest.raises(ValidationError, match="trusted_proxies"):
        GatewaySettings(trusted_proxies=[entry])
