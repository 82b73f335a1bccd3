"""ASGI entry point: `uvicorn crm_gateway.main:app` (or `create_app(settings)` in tests)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware import Middleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from crm_common.production import exit_if_refused
from crm_common.runtime import create_service_app
from crm_gateway import proxy
from crm_gateway.apidocs import api as apidocs
from crm_gateway.audit import api as audit
from crm_gateway.console import STATIC
from crm_gateway.console import router as console_router
from crm_gateway.identity import api as identity
from crm_gateway.ingestion import api as ingestion
from crm_gateway.middleware import API_PREFIX, GatewayAuthMiddleware
from crm_gateway.runtime import build_runtime
from crm_gateway.security_headers import SecurityHeadersMiddleware
from crm_gateway.sent import api as sent_api
from crm_gateway.settings import GatewaySettings
from crm_gateway.state import GatewayState
from crm_gateway.views import api as views


def create_app(
    settings: GatewaySettings | None = None,
    *,
    start_background: bool = True,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """`transports` replaces the network for named upstreams (tests: httpx.ASGITransport of a fake app)."""
    settings = settings or GatewaySettings()
    runtime = build_runtime(settings)
    gateway = GatewayState(settings, transports)
    app = create_service_app(
        runtime,
        title="3PL CRM gateway",
        description="One entry point: /api/v1 routed to the services with auth and roles, customer 360, TMS/WMS event ingestion, "
        "the console.",
        routers=[
            identity.router,
            ingestion.router,
            views.router,
            audit.router,
            apidocs.router,
            console_router,
            sent_api.router,
            proxy.router,
        ],
        start_background=start_background,
        edge_auth=False,  # the gateway is the edge: it authenticates callers itself and signs what it forwards
        admin_prefix=API_PREFIX,  # the gateway's own dead letters, behind its authentication like every /api/v1 route
        problems=sent_api.PROBLEMS,
    )
    app.state.gateway = gateway
    _with_ingest_request_schema(app)
    # inside the correlation/metrics middleware, so refusals carry a correlation id and are counted
    app.user_middleware.append(
        Middleware(GatewayAuthMiddleware, state=gateway, forward=proxy.forward, exception_handlers=app.exception_handlers)
    )
    # outermost: the client address (rate limits, logs, X-Forwarded-For upstream) is the peer's unless the peer is a
    # trusted proxy; the server's own proxy-header handling is off (deploy/docker/entrypoint.sh, scripts/devrun.py)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    runtime.add_shutdown_hook(gateway.aclose)
    return app


def _with_ingest_request_schema(app: FastAPI) -> None:
    """POST /api/v1/events reads its body itself (each event is judged on its own), so FastAPI cannot see its
    schema: it is added to the generated document once."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = ingestion.add_request_schema(generate())
        return app.openapi_schema

    app.openapi = openapi


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return exit_if_refused(create_app)
    raise AttributeError(name)
