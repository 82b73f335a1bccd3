"""crm_common.edge: a service answers only requests that carry a valid edge token for it, and sees exactly the
identity the token carries."""

from __future__ import annotations

import httpx
import jwt
import pytest
from fastapi import FastAPI, Request
from pydantic import SecretStr, ValidationError

from crm_common.edge import EDGE_TOKEN_HEADER, EdgeAuthMiddleware, EdgeTokenAuth, EdgeTokenSigner, EdgeTokenVerifier
from crm_common.settings import EdgeTokenSettings

SETTINGS = EdgeTokenSettings()
AGENT = {"X-Actor-Id": "agent-1", "X-Actor-Role": "agent", "X-Actor-Team": "hotline"}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def echo_app(verifier: EdgeTokenVerifier) -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/whoami")
    async def whoami(request: Request):
        return {name: value for name, value in request.headers.items() if name.startswith(("x-actor", "x-customer"))}

    app.add_middleware(EdgeAuthMiddleware, verifier=verifier)
    return app


def client(app, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc", auth=auth)


async def test_a_valid_token_carries_the_identity_and_overrides_identity_headers_sent_beside_it():
    app = echo_app(EdgeTokenVerifier(SETTINGS, audience="complaints"))
    token = EdgeTokenSigner(SETTINGS, issuer="gateway").token("complaints", {"x-actor-id": "agent-1", "x-actor-role": "agent"})
    async with client(app) as http:
        response = await http.get("/whoami", headers={EDGE_TOKEN_HEADER: token, "X-Actor-Role": "admin", "X-Customer-Id": "C9"})
    assert response.status_code == 200
    assert response.json() == {"x-actor-id": "agent-1", "x-actor-role": "agent"}


async def test_the_httpx_auth_signs_the_identity_headers_of_each_request():
    app = echo_app(EdgeTokenVerifier(SETTINGS, audience="complaints"))
    async with client(app, EdgeTokenAuth(EdgeTokenSigner(SETTINGS, issuer="tool"), "complaints")) as http:
        assert (await http.get("/whoami", headers=AGENT)).json() == {k.lower(): v for k, v in AGENT.items()}
        assert (await http.get("/whoami")).json() == {}


def forged_settings() -> EdgeTokenSettings:
    return EdgeTokenSettings(edge_token_key=SecretStr("not-the-key-of-this-deployment-0123456789"))


@pytest.mark.parametrize("case", ["missing", "expired", "another service", "forged signature", "too long-lived", "garbage"])
async def test_a_request_without_a_valid_token_is_401_problem_json(case):
    clock = Clock()
    app = echo_app(EdgeTokenVerifier(SETTINGS, audience="complaints", clock=clock))
    signer = EdgeTokenSigner(SETTINGS, issuer="gateway", clock=clock)
    identity = {"x-actor-id": "agent-1", "x-actor-role": "admin"}
    headers = {
        "missing": {},
        "expired": {
            EDGE_TOKEN_HEADER: EdgeTokenSigner(SETTINGS, issuer="gateway", clock=Clock(clock.now - 120)).token("complaints", identity)
        },
        "another service": {EDGE_TOKEN_HEADER: signer.token("scoring", identity)},
        "forged signature": {
            EDGE_TOKEN_HEADER: EdgeTokenSigner(forged_settings(), issuer="gateway", clock=clock).token("complaints", identity)
        },
        "too long-lived": {
            EDGE_TOKEN_HEADER: jwt.encode(
                {"iss": "gateway", "aud": "complaints", "iat": int(clock.now), "exp": int(clock.now) + 3600, "identity": identity},
                SETTINGS.edge_token_key.get_secret_value(),
                algorithm="HS256",
            )
        },
        "garbage": {EDGE_TOKEN_HEADER: "not.a.token"},
    }[case]
    async with client(app) as http:
        response = await http.get("/whoami", headers={**headers, "X-Actor-Id": "agent-1", "X-Actor-Role": "admin"})
    assert response.status_code == 401, case
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401 and response.json()["detail"].startswith("Service authentication failed")
    assert "WWW-Authenticate" in response.headers


async def test_health_stays_open():
    async with client(echo_app(EdgeTokenVerifier(SETTINGS, audience="complaints"))) as http:
        assert (await http.get("/healthz")).status_code == 200


def test_a_cached_token_is_refused_once_it_expires():
    clock = Clock()
    verifier = EdgeTokenVerifier(SETTINGS, audience="scoring", clock=clock)
    token = EdgeTokenSigner(SETTINGS, issuer="gateway", clock=clock).token("scoring", {"x-actor-id": "a"})
    assert verifier.verify(token) == {"x-actor-id": "a"}
    clock.now += SETTINGS.edge_token_ttl_s + SETTINGS.edge_token_leeway_s + 1
    with pytest.raises(Exception, match="expired"):
        verifier.verify(token)


def test_the_signer_renews_a_token_after_half_its_lifetime():
    clock = Clock()
    signer = EdgeTokenSigner(SETTINGS, issuer="gateway", clock=clock)
    first = signer.token("scoring", {"x-actor-id": "a"})
    assert signer.token("scoring", {"x-actor-id": "a"}) == first
    assert signer.token("scoring", {"x-actor-id": "b"}) != first
    clock.now += SETTINGS.edge_token_ttl_s / 2
    assert signer.token("scoring", {"x-actor-id": "a"}) != first


def test_a_short_key_is_refused():
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        EdgeTokenSettings(edge_token_key=SecretStr("short"))
