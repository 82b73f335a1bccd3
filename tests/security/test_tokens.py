"""Bad credentials through the gateway's HTTP surface: every forged, stale or incomplete token is a
401 problem+json with WWW-Authenticate, never echoes the token, and never reaches an upstream.

crm_gateway.auth's verifier is unit-tested in services/gateway/tests/test_auth.py (it raises
AuthError); this checks the whole path a request takes (middleware, problem body, no forwarding).
"""

from __future__ import annotations

import base64
import datetime as dt
import json

import httpx
import jwt
import pytest
import pytest_asyncio

from crm_gateway.auth import SigningKey, generate_api_key, mint_token
from crm_gateway.main import create_app
from crm_gateway.settings import DEV_SECRET, GatewaySettings
from fuzz_support import migrated

NOW = dt.datetime.now(dt.UTC)


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest_asyncio.fixture
async def gateway(database_factory):
    from pathlib import Path

    import crm_gateway

    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "C1", "customer_id": "C1", "name": "Acme"})

    url = await migrated(database_factory, Path(crm_gateway.__file__).resolve().parents[1] / "alembic.ini", "sqlite", "sectokens")
    plaintext, record = generate_api_key("tms-sec", "tms")
    settings = GatewaySettings(database_url=url, rate_limit_enabled=False, api_keys=[dict(record.__dict__)])
    transports = {name: httpx.MockTransport(upstream) for name in ("profile", "scoring", "complaints", "notifications")}
    app = create_app(settings, start_background=False, transports=transports)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    yield client, settings, seen, plaintext
    await client.aclose()
    await app.state.gateway.aclose()
    await app.state.runtime.db.dispose()


def claims(settings, **overrides) -> dict:
    base = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "agent-x",
        "role": "agent",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + dt.timedelta(hours=1)).timestamp()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def signed(settings, body: dict, *, secret: str = DEV_SECRET, kid: str | None = "dev-1", alg: str = "HS256") -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(body, secret, algorithm=alg, headers=headers)


def forged_tokens(settings) -> dict[str, str]:
    key = SigningKey("dev-1", "HS256", DEV_SECRET.encode())
    ok = dict(subject="agent-x", role="agent", issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    valid = mint_token(key, **ok)
    header, payload, signature = valid.split(".")
    escalated = b64({**json.loads(base64.urlsafe_b64decode(payload + "==")), "role": "admin"})
    none_body = b64(claims(settings, role="admin"))
    return {
        "expired": mint_token(key, **ok, now=NOW - dt.timedelta(hours=3), ttl=dt.timedelta(hours=1)),
        "not_yet_valid": mint_token(key, **ok, now=NOW + dt.timedelta(hours=1)),
        "wrong_audience": mint_token(key, **{**ok, "audience": "another-api"}),
        "wrong_issuer": mint_token(key, **{**ok, "issuer": "evil-idp"}),
        "wrong_signature": signed(settings, claims(settings), secret="an-attacker-secret-of-32-bytes-or-more!"),
        "payload_tampered": f"{header}.{escalated}.{signature}",
        "signature_stripped": f"{header}.{payload}.",
        "alg_none": f"{b64({'alg': 'none', 'kid': 'dev-1', 'typ': 'JWT'})}.{none_body}.",
        "alg_None": f"{b64({'alg': 'None', 'kid': 'dev-1', 'typ': 'JWT'})}.{none_body}.",
        "alg_none_no_kid": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{none_body}.",
        "missing_sub": signed(settings, claims(settings, sub=None)),
        "missing_role": signed(settings, claims(settings, role=None)),
        "missing_exp": signed(settings, claims(settings, exp=None)),
        "missing_aud": signed(settings, claims(settings, aud=None)),
        "unknown_role": signed(settings, claims(settings, role="superuser")),
        "customer_without_customer_id": signed(settings, claims(settings, role="customer")),
        "unknown_kid": signed(settings, claims(settings), kid="other-key"),
        "no_kid": signed(settings, claims(settings), kid=None),
        "lifetime_too_long": signed(settings, claims(settings, exp=int((NOW + dt.timedelta(days=30)).timestamp()))),
        "hs512_under_an_hs256_key": signed(settings, claims(settings), alg="HS512"),
        "garbage": "not.a.token",
        "empty_segments": "..",
    }


CASES = list(forged_tokens(GatewaySettings(database_url="sqlite:///unused.db")))


@pytest.mark.parametrize("case", CASES)
async def test_forged_or_incomplete_token_is_401_and_never_forwarded(gateway, case):
    client, settings, seen, _ = gateway
    token = forged_tokens(settings)[case]
    response = await client.get("/api/v1/customers/C1", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, f"{case}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    assert token not in response.text
    assert seen == [], "a refused request reached an upstream"


async def test_valid_token_and_api_key_pass_so_the_refusals_are_about_the_token(gateway):
    client, settings, seen, plaintext = gateway
    key = SigningKey("dev-1", "HS256", DEV_SECRET.encode())
    token = mint_token(key, subject="agent-x", role="agent", issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    assert (await client.get("/api/v1/customers/C1", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    assert len(seen) == 1 and seen[0].headers["x-actor-role"] == "agent"
    me = await client.get("/api/v1/auth/me", headers={"X-API-Key": plaintext})
    assert me.status_code == 200 and me.json()["role"] == "tms"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "ApiKey crm_deadbeef_notthekey"},
        {"X-API-Key": "crm_deadbeef_notthekey"},
        {"X-API-Key": "garbage"},
        {},
    ],
    ids=["empty-bearer", "basic", "wrong-api-key", "wrong-x-api-key", "malformed-api-key", "none"],
)
async def test_missing_or_wrong_credentials_are_401(gateway, headers):
    client, _, seen, plaintext = gateway
    response = await client.get("/api/v1/customers/C1", headers=headers)
    assert response.status_code == 401 and response.headers["content-type"].startswith("application/problem+json")
    assert seen == []


async def test_identity_headers_sent_by_a_client_are_dropped(gateway):
    """A caller cannot claim to be the gateway: X-Actor-* / X-Customer-Id from outside never reach a service."""
    client, settings, seen, _ = gateway
    key = SigningKey("dev-1", "HS256", DEV_SECRET.encode())
    token = mint_token(
        key, subject="portal-c1", role="customer", customer_id="C1", issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    response = await client.get(
        "/api/v1/customers/C1",
        headers={"Authorization": f"Bearer {token}", "X-Actor-Role": "admin", "X-Actor-Id": "admin-1", "X-Customer-Id": "C2"},
    )
    assert response.status_code == 200
    forwarded = seen[-1].headers
    assert forwarded["x-actor-role"] == "customer" and forwarded["x-customer-id"] == "C1" and forwarded["x-actor-id"] == "C1"
    assert forwarded.get_list("x-actor-role") == ["customer"]
