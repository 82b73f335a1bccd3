"""What the gateway holds for its lifetime: settings, upstream clients, verifiers, limiter, ownership cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import httpx
from fastapi import Depends, Request

from crm_gateway.auth import ApiKeyStore, JWTVerifier, Principal, SigningKey
from crm_gateway.ratelimit import RateLimiter
from crm_gateway.settings import GatewaySettings
from crm_gateway.upstream import Upstreams


class GatewayState:
    def __init__(self, settings: GatewaySettings, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None):
        from crm_gateway.objects import Ownership

        self.settings = settings
        self.upstreams = Upstreams(settings, transports)
        self.verifier: JWTVerifier = settings.verifier()
        self.api_keys: ApiKeyStore = settings.api_key_store()
        self.signing_key: SigningKey | None = settings.signing_key()
        self.limiter = RateLimiter(settings.rate_limits)
        self.ownership = Ownership(self.upstreams)

    async def aclose(self) -> None:
        await self.upstreams.aclose()


def gateway_of(request: Request) -> GatewayState:
    return request.app.state.gateway


def principal_of(request: Request) -> Principal:
    """The caller the gateway's auth middleware authenticated (every /api/v1 route is behind it)."""
    return request.state.principal


async def gateway_dependency(request: Request) -> GatewayState:
    return gateway_of(request)


async def principal_dependency(request: Request) -> Principal:
    return principal_of(request)


# async: FastAPI runs a plain `def` dependency in a worker thread (crm_common.deps)
GatewayDep = Annotated[GatewayState, Depends(gateway_dependency)]
PrincipalDep = Annotated[Principal, Depends(principal_dependency)]
