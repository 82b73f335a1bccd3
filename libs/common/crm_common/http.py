"""ASGI middleware for correlation ids and HTTP metrics, and the health/metrics routes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_common.context import correlation_id_var, new_correlation_id
from crm_common.metrics import HTTP_LATENCY, HTTP_REQUESTS

CORRELATION_HEADER = "x-correlation-id"


class CorrelationAndMetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): reads or creates the correlation id, times the request."""

    def __init__(self, app: ASGIApp, service: str):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        correlation_id: str | None = None
        for name, value in scope.get("headers", ()):
            if name == CORRELATION_HEADER.encode():
                correlation_id = value.decode(errors="replace")[:200]
                break
        request_id = correlation_id or new_correlation_id()
        token = correlation_id_var.set(request_id)
        status = {"code": 500}

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(CORRELATION_HEADER.encode(), request_id.encode())]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_header)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(self.service, method, path, str(status["code"])).inc()
            HTTP_LATENCY.labels(self.service, method, path).observe(time.perf_counter() - started)
            correlation_id_var.reset(token)


def health_router(readiness: Callable[[], Awaitable[dict[str, str]]]) -> APIRouter:
    """`/healthz`: the process answers. `/readyz`: every check says ok. `/metrics`: Prometheus."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        checks = await readiness()
        ready = all(v in ("ok", "degraded") for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
