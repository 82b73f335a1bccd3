"""Pure-ASGI middleware for /api/v1: route match, authentication, rate limit, role check.

It reads only crm_gateway.authz.RULES; it stores the principal and the matched rule in the request
state for the handlers, and drops any identity header a client tries to send itself. A request whose
rule names an upstream goes straight to the proxy handler (`forward`) behind the app's exception
handlers: the rule already says where it goes, so the framework's routing (a quarter of the gateway's
CPU per proxied request, bench/status_query.py) is skipped; gateway-local rules go through the app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from types import SimpleNamespace
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.middleware.exceptions import ExceptionMiddleware

from crm_common.edge import IDENTITY_HEADER_BYTES
from crm_common.problems import PROBLEM_JSON, Problem
from crm_gateway.auth import AuthError, Principal
from crm_gateway.authz import PUBLIC, MethodNotAllowed, NoRoute, match
from crm_gateway.ratelimit import retry_after_header
from crm_gateway.state import GatewayState

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def unsafe_path(path: str, raw_path: bytes | None) -> bool:
    segments = path.split("/")
    if any(s in (".", "..") for s in segments) or "\\" in path:
        return True
    raw = (raw_path or b"").lower()
    return b"%2f" in raw or b"%5c" in raw or b"%2e" in raw


def _problem(problem: Problem, path: str) -> JSONResponse:
    return JSONResponse(problem.body(path), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


def authenticate(state: GatewayState, headers: dict[bytes, bytes]) -> Principal | None:
    """Bearer JWT, `Authorization: ApiKey <key>` or `X-API-Key: <key>`; None when nothing is presented."""
    authorization = headers.get(b"authorization", b"").decode(errors="replace").strip()
    api_key = headers.get(b"x-api-key", b"").decode(errors="replace").strip()
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            return state.verifier.verify(credentials)
        if scheme.lower() == "apikey" and credentials:
            return state.api_keys.verify(credentials)
        raise AuthError("unsupported Authorization scheme")
    if api_key:
        return state.api_keys.verify(api_key)
    return None


class GatewayAuthMiddleware:
    def __init__(
        self,
        app,
        state: GatewayState,
        forward: Callable[[Request], Awaitable[Response]] | None = None,
        exception_handlers: Mapping[Any, Any] | None = None,
    ):
        self.app = app
        self.state = state
        self.forward = forward
        # the app's handlers (Problem -> problem+json...); 500 and Exception stay with the outer server-error layer
        handlers = {key: value for key, value in (exception_handlers or {}).items() if key not in (500, Exception)}
        self._forwarding = ExceptionMiddleware(self._forward, handlers=handlers)
        self._route_labels: dict[str, SimpleNamespace] = {}

    async def _forward(self, scope, receive, send) -> None:
        response = await self.forward(Request(scope, receive))
        await response(scope, receive, send)

    def _route_label(self, pattern: str) -> SimpleNamespace:
        """What the metrics middleware reads as the route (`.path`): the rule's pattern, a bounded set of labels."""
        label = self._route_labels.get(pattern)
        if label is None:
            label = self._route_labels[pattern] = SimpleNamespace(path=API_PREFIX + pattern)
        return label

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not (scope["path"] == API_PREFIX or scope["path"].startswith(API_PREFIX + "/")):
            return await self.app(scope, receive, send)
        path = scope["path"]
        sub_path = path[len(API_PREFIX) :] or "/"
        method = scope["method"]
        if unsafe_path(path, scope.get("raw_path")):
            # "/customers/C1/../C2" would be checked as C1 and read as C2 once normalised downstream
            return await _problem(Problem(400, "Bad Request", "Dot segments and encoded slashes are not allowed in paths."), path)(
                scope, receive, send
            )
        try:
            found = match(sub_path, "GET" if method == "HEAD" else method)
        except NoRoute:
            return await _problem(Problem(404, "Not Found", "No such API route."), path)(scope, receive, send)
        except MethodNotAllowed as exc:
            problem = Problem(405, "Method Not Allowed", headers={"Allow": ", ".join(sorted(exc.allowed))})
            return await _problem(problem, path)(scope, receive, send)

        headers = dict(scope.get("headers") or ())
        try:
            principal = authenticate(self.state, headers)
        except AuthError as exc:
            log.info("authentication failed: %s", exc.reason)
            problem = Problem(
                401, "Unauthorized", f"Authentication failed: {exc.reason}.", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
            return await _problem(problem, path)(scope, receive, send)
        public = found.rule.roles == PUBLIC
        if principal is None and not public:
            problem = Problem(401, "Unauthorized", "A bearer token or an API key is required.", headers={"WWW-Authenticate": "Bearer"})
            return await _problem(problem, path)(scope, receive, send)

        if self.state.settings.rate_limit_enabled:
            if principal is not None:
                client_key, role = principal.client_key, principal.role
            else:
                client = scope.get("client") or ("unknown", 0)
                client_key, role = f"ip:{client[0]}", "anonymous"
            wait = self.state.limiter.check(client_key, role)
            if wait is not None:
                problem = Problem(
                    429,
                    "Too Many Requests",
                    f"Rate limit for role {role} exceeded.",
                    headers={"Retry-After": retry_after_header(wait)},
                    retry_after_s=round(wait, 3),
                )
                return await _problem(problem, path)(scope, receive, send)

        if not public and not found.rule.allows(principal.role):
            problem = Problem(403, "Forbidden", f"Role {principal.role} may not {method} {API_PREFIX}{found.rule.pattern}.")
            return await _problem(problem, path)(scope, receive, send)

        scope["headers"] = [(k, v) for k, v in scope.get("headers") or () if k not in IDENTITY_HEADER_BYTES]
        scope.setdefault("state", {})
        scope["state"]["principal"] = principal
        scope["state"]["match"] = found
        if found.rule.upstream is not None and self.forward is not None:
            scope["route"] = self._route_label(found.rule.pattern)
            return await self._forwarding(scope, receive, send)
        return await self.app(scope, receive, send)
