"""One pooled httpx.AsyncClient per upstream service; timeouts; retries only for idempotent methods.

Failures become problem+json: 503 when the service cannot be reached (connection refused, DNS,
pool exhausted), 504 when it is too slow, 502 when it answers with something that is not HTTP.
"""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from collections.abc import Mapping
from typing import Any

import httpx

from crm_common.context import current_correlation_id
from crm_common.problems import Problem
from crm_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)



def remember_missing_sniffio() -> None:
    """httpcore imports `sniffio` in every lock and event it sets up (several per proxied request). anyio 4 no
    longer brings sniffio, and a failed import is not cached: each one walked sys.path again, a quarter of the
    gateway's CPU under py-spy. A None entry in sys.modules makes that import fail at once with the same
    ModuleNotFoundError, which httpcore, httpx and anyio already handle (they then assume asyncio). Nothing
    changes when sniffio is installed."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None


remember_missing_sniffio()

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})


def upstream_problem(name: str, exc: Exception) -> Problem:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return Problem(
            503, "Upstream unavailable", f"The {name} service cannot be reached.",
            type_="urn:crm:problem:upstream-unavailable", upstream=name, headers={"Retry-After": "2"},
        )
    if isinstance(exc, httpx.TimeoutException):
        return Problem(504, "Upstream timeout", f"The {name} service did not answer in time.", type_="urn:crm:problem:upstream-timeout", upstream=name)
    return Problem(502, "Bad gateway", f"The {name} service gave an invalid response.", type_="urn:crm:problem:bad-gateway", upstream=name)


class Upstream:
    def __init__(self, name: str, base_url: str, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.retries = settings.upstream_retries
        self.backoff_s = settings.upstream_retry_backoff_s
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(settings.upstream_timeout_s, connect=settings.upstream_connect_timeout_s),
            limits=httpx.Limits(max_connections=settings.upstream_max_connections, max_keepalive_connections=settings.upstream_max_keepalive),
            transport=transport,
            follow_redirects=False,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send with retries for idempotent methods; raises Problem(502/503/504) when the upstream fails."""
        method = method.upper()
        attempts = 1 + (self.retries if method in IDEMPOTENT else 0)
        all_headers = {"X-Correlation-ID": current_correlation_id() or ""}
        all_headers.update(headers or {})
        extra = {"timeout": timeout} if timeout is not None else {}
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                response = await self.client.request(method, path, params=params, headers=all_headers, content=content, json=json, **extra)
            except httpx.HTTPError as exc:
                last = exc
                log.warning("upstream %s %s %s failed (attempt %d/%d): %r", self.name, method, path, attempt + 1, attempts, exc)
            else:
                if response.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                    log.warning("upstream %s answered %d, retrying", self.name, response.status_code)
                    await response.aclose()
                else:
                    return response
            if attempt + 1 < attempts:
                await asyncio.sleep(self.backoff_s * (2**attempt))
        raise upstream_problem(self.name, last)  # the final attempt raised (any answer returns above)

    async def get_json(self, path: str, *, params: Any = None, headers: Mapping[str, str] | None = None, timeout: float | None = None) -> Any:
        """GET and decode JSON; a non-2xx answer raises Problem with the upstream's status."""
        response = await self.request("GET", path, params=params, headers=headers, timeout=timeout)
        if response.status_code >= 400:
            raise Problem(response.status_code, f"{self.name} answered {response.status_code}", upstream=self.name)
        try:
            return response.json()
        except ValueError:
            raise Problem(502, "Bad gateway", f"The {self.name} service sent invalid JSON.", upstream=self.name) from None

    async def aclose(self) -> None:
        await self.client.aclose()


class Upstreams:
    def __init__(self, settings: GatewaySettings, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None):
        transports = transports or {}
        self.by_name = {name: Upstream(name, url, settings, transports.get(name)) for name, url in settings.upstream_urls().items()}

    def __getitem__(self, name: str) -> Upstream:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.by_name.values())

    async def aclose(self) -> None:
        await asyncio.gather(*(u.aclose() for u in self.by_name.values()), return_exceptions=True)
