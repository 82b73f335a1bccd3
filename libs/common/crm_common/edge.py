"""Service-to-service authentication: every request to a service's API carries a short-lived proof that a
holder of the edge key sent it (the gateway, or a tool that calls a service directly), and a service takes
identity (X-Actor-*, X-Customer-Id) only from that proof.

The proof is a JWT (pyjwt, HS256 with `CRM_EDGE_TOKEN_KEY`) in the `X-Edge-Token` header: `iss` the caller
(`gateway`, `demo-seed`...), `aud` the service called (its `service_name`: a token for scoring is refused by
complaints), `iat`/`exp` (`CRM_EDGE_TOKEN_TTL_S`, 60 s), and `identity`: the identity headers the caller
sends on a user's behalf (empty for its own requests). `EdgeAuthMiddleware` answers 401 problem+json without
a valid token and replaces whatever identity headers arrived with the token's, so the services' code reads
identity from the headers as before. Why HMAC and not Ed25519 or mTLS: docs/gateway.md.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

import httpx
import jwt
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_common.problems import PROBLEM_JSON, Problem
from crm_common.settings import EdgeTokenSettings

EDGE_TOKEN_HEADER = "X-Edge-Token"
ALGORITHM = "HS256"
IDENTITY_HEADERS: tuple[str, ...] = ("x-actor-id", "x-actor-subject", "x-actor-role", "x-actor-team", "x-customer-id")
# what stays reachable without a proof: probes, metrics, and the API's description (the gateway merges it)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

IDENTITY_HEADER_BYTES = frozenset(name.encode() for name in IDENTITY_HEADERS)
_TOKEN_BYTES = EDGE_TOKEN_HEADER.lower().encode()


class AuthError(Exception):
    """Authentication failed: answered 401 with this reason (never the token). The gateway's own checks of a
    caller's JWT or API key (crm_gateway.auth) raise it too."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def identity_of(headers: Mapping[str, str]) -> dict[str, str]:
    """The identity headers among `headers` (any case), lower-cased."""
    return {name.lower(): value for name, value in headers.items() if name.lower() in IDENTITY_HEADERS}


class EdgeTokenSigner:
    """Mints proofs for one caller. A token is reused for the same service and identity until half its lifetime
    has passed: a request costs a dictionary lookup, and the services' verifier caches it the same way."""

    def __init__(self, settings: EdgeTokenSettings, *, issuer: str, clock: Callable[[], float] = time.time, cache_size: int = 10_000):
        self._key = settings.edge_token_key.get_secret_value().encode()
        self.issuer = issuer
        self.ttl_s = settings.edge_token_ttl_s
        self.clock = clock
        self.cache_size = cache_size
        self._tokens: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, float]] = OrderedDict()

    def token(self, audience: str, identity: Mapping[str, str] | None = None) -> str:
        identity = dict(identity or {})
        key = (audience, tuple(sorted(identity.items())))
        now = self.clock()
        cached = self._tokens.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]
        issued = int(now)
        claims = {"iss": self.issuer, "aud": audience, "iat": issued, "exp": issued + int(self.ttl_s), "identity": identity}
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM)
        self._tokens[key] = (token, issued + self.ttl_s / 2)
        self._tokens.move_to_end(key)
        if len(self._tokens) > self.cache_size:
            self._tokens.popitem(last=False)
        return token

    def headers(self, audience: str, headers: Mapping[str, str]) -> dict[str, str]:
        """The proof header for a request to `audience` that carries `headers` (their identity is what gets signed)."""
        return {EDGE_TOKEN_HEADER: self.token(audience, identity_of(headers))}


class EdgeTokenVerifier:
    """Checks proofs addressed to one service; returns the identity they carry. Successes are cached until expiry."""

    def __init__(self, settings: EdgeTokenSettings, *, audience: str, clock: Callable[[], float] = time.time, cache_size: int = 10_000):
        self._key = settings.edge_token_key.get_secret_value().encode()
        self.audience = audience
        self.ttl_s = settings.edge_token_ttl_s
        self.leeway_s = settings.edge_token_leeway_s
        self.clock = clock
        self.cache_size = cache_size
        self._verified: OrderedDict[str, tuple[dict[str, str], float]] = OrderedDict()

    def verify(self, token: str) -> dict[str, str]:
        cached = self._verified.get(token)
        if cached is not None:
            if self.clock() < cached[1]:
                return cached[0]
            del self._verified[token]
        claims = self._decode(token)
        identity: dict[str, str] = claims["identity"]
        self._verified[token] = (identity, float(claims["exp"]) + self.leeway_s)
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        return identity

    def _decode(self, token: str) -> dict[str, Any]:
        try:  # times are checked below against self.clock, the one the cache uses
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                options={"require": ["iss", "aud", "iat", "exp", "identity"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError:
            raise AuthError("edge token is for another service") from None
        except jwt.InvalidSignatureError:
            raise AuthError("edge token signature invalid") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"edge token invalid: {exc}") from None
        if not all(type(claims[name]) in (int, float) for name in ("iat", "exp")):
            raise AuthError("edge token times malformed")
        now = self.clock()
        if now >= float(claims["exp"]) + self.leeway_s:
            raise AuthError("edge token expired")
        if float(claims["exp"]) - float(claims["iat"]) > self.ttl_s:
            raise AuthError("edge token lifetime too long")
        if float(claims["iat"]) > now + self.leeway_s:
            raise AuthError("edge token issued in the future")
        identity = claims["identity"]
        if not isinstance(identity, dict) or not all(k in IDENTITY_HEADERS and isinstance(v, str) for k, v in identity.items()):
            raise AuthError("edge token identity malformed")
        return claims


class EdgeAuthMiddleware:
    """Pure ASGI: outside OPEN_PATHS a request needs a valid X-Edge-Token for this service (else 401 problem+json);
    the identity headers the service sees are exactly the token's."""

    def __init__(self, app: ASGIApp, verifier: EdgeTokenVerifier, open_paths: Iterable[str] = OPEN_PATHS):
        self.app = app
        self.verifier = verifier
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or ()
        token = next((value for name, value in headers if name == _TOKEN_BYTES), None)
        try:
            if token is None:
                raise AuthError(f"{EDGE_TOKEN_HEADER} required: call this service through the gateway")
            identity = self.verifier.verify(token.decode("latin-1"))
        except AuthError as exc:
            problem = Problem(
                401,
                "Unauthorized",
                f"Service authentication failed: {exc.reason}.",
                type_="urn:crm:problem:edge-token",
                headers={"WWW-Authenticate": 'Bearer realm="crm-edge"'},
            )
            response = JSONResponse(problem.body(scope["path"]), status_code=401, media_type=PROBLEM_JSON, headers=problem.headers)
            return await response(scope, receive, send)
        scope["headers"] = [(n, v) for n, v in headers if n not in IDENTITY_HEADER_BYTES] + [
            (name.encode(), value.encode()) for name, value in identity.items()
        ]
        return await self.app(scope, receive, send)


class EdgeTokenAuth(httpx.Auth):
    """httpx auth for callers of a service's API other than the gateway (tools, tests): signs each request's identity."""

    def __init__(self, signer: EdgeTokenSigner, audience: str):
        self.signer = signer
        self.audience = audience

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.signer.headers(self.audience, request.headers))
        yield request


def caller_auth(audience: str, *, caller: str) -> EdgeTokenAuth:
    """For a tool that calls the service `audience` directly (the demo seeder): the key from CRM_EDGE_TOKEN_KEY."""
    return EdgeTokenAuth(EdgeTokenSigner(EdgeTokenSettings(), issuer=caller), audience)
