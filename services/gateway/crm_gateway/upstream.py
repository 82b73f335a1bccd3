"""One pooled aiohttp client session per upstream service, shared for the gateway's lifetime and closed on shutdown;
timeouts; retries (tenacity) only for idempotent methods.

aiohttp, not httpx: in the same run (bench/upstream_client_ab.py, docs/performance.md) httpx's connection pool cost
several times aiohttp's CPU per proxied request. Tests hand the gateway httpx transports instead (an in-process ASGI
app, a mock): `transport` switches one Upstream to an httpx.AsyncClient on it. Answers are httpx.Response either way.

Failures become problem+json: 503 when the service cannot be reached (connection refused, DNS,
pool exhausted), 504 when it is too slow, 502 when it answers with something that is not HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, retry_if_result, stop_after_attempt, wait_exponential
from yarl import URL

from crm_common.context import current_correlation_id
from crm_common.edge import EdgeTokenSigner
from crm_common.problems import Problem
from crm_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
FAILURES = (aiohttp.ClientError, TimeoutError, httpx.HTTPError)
# refused before anything is sent (a header with CR or LF, a bad URL): another attempt would be refused the same way
REFUSED = (ValueError, httpx.LocalProtocolError, httpx.UnsupportedProtocol)
UNREACHABLE = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
TOO_SLOW = (TimeoutError, httpx.TimeoutException)


def retryable_error(exc: BaseException) -> bool:
    return isinstance(exc, FAILURES) and not isinstance(exc, REFUSED)


def retryable_answer(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES


def validation_problem(name: str, response: httpx.Response) -> Problem:
    """An upstream's 422 as a 422 of the gateway, with the upstream's detail and field errors when it sent problem+json."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    extra = {"errors": body["errors"]} if isinstance(body.get("errors"), list) else {}
    return Problem(422, "Validation failed", detail, type_="urn:crm:problem:validation", upstream=name, **extra)


def upstream_problem(name: str, exc: BaseException | None) -> Problem:
    if isinstance(exc, UNREACHABLE):
        return Problem(
            503,
            "Upstream unavailable",
            f"The {name} service cannot be reached.",
            type_="urn:crm:problem:upstream-unavailable",
            upstream=name,
            headers={"Retry-After": "2"},
        )
    if isinstance(exc, TOO_SLOW):
        return Problem(
            504, "Upstream timeout", f"The {name} service did not answer in time.", type_="urn:crm:problem:upstream-timeout", upstream=name
        )
    return Problem(502, "Bad gateway", f"The {name} service gave an invalid response.", type_="urn:crm:problem:bad-gateway", upstream=name)


def upstream_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """A keep-alive pool of at most upstream_max_connections; connect within upstream_connect_timeout_s, a connection
    from the pool and each read within upstream_timeout_s. No redirects (per request), no proxy from the environment,
    no cookie jar (an upstream's cookie must never reach the next caller), no compression asked (answers are forwarded
    as they come)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.upstream_max_connections, limit_per_host=0),
        timeout=timeouts(settings.upstream_timeout_s, settings.upstream_connect_timeout_s),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("Accept-Encoding",),
        trust_env=False,
    )


def timeouts(read_s: float, connect_s: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=read_s, sock_connect=connect_s, sock_read=read_s)


class Upstream:
    def __init__(
        self,
        name: str,
        base_url: str,
        settings: GatewaySettings,
        transport: httpx.AsyncBaseTransport | None = None,
        signer: EdgeTokenSigner | None = None,
    ):
        self.name = name
        self.audience = settings.upstream_audiences()[name]
        self.signer = signer or EdgeTokenSigner(settings.edge, issuer=settings.service_name)
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None  # made on first use, inside the running loop
        self.test_client = (
            None
            if transport is None
            else httpx.AsyncClient(
                base_url=self.base_url,
                transport=transport,
                follow_redirects=False,
                timeout=httpx.Timeout(settings.upstream_timeout_s, connect=settings.upstream_connect_timeout_s),
            )
        )
        self._idempotent = self._retrying(1 + settings.upstream_retries, settings.upstream_retry_backoff_s)

    def _retrying(self, attempts: int, backoff_s: float) -> AsyncRetrying:
        """`attempts` tries (idempotent methods), backoff_s * 2**n between them, on a transport error or a 502/503/504
        answer; then the last answer is returned, or the last error raised."""
        return AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=backoff_s),
            retry=retry_if_exception(retryable_error) | retry_if_result(retryable_answer),
            before_sleep=self._log_retry,
            retry_error_callback=lambda state: state.outcome.result(),
        )

    def _log_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome
        failure = repr(outcome.exception()) if outcome.failed else f"status {outcome.result().status_code}"
        log.warning("upstream %s %s %s failed (attempt %d), retrying: %s", self.name, *state.args[:2], state.attempt_number, failure)

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
        all_headers = {"X-Correlation-ID": current_correlation_id() or ""}
        all_headers.update(headers or {})
        all_headers.update(self.signer.headers(self.audience, all_headers))  # the proof of this request and its identity
        args = (method, path, params, all_headers, content, json, timeout)
        try:
            return await self._with_retries(method in IDEMPOTENT, args)
        except FAILURES + REFUSED as exc:
            log.warning("upstream %s %s %s failed: %r", self.name, method, path, exc)
            raise upstream_problem(self.name, exc) from exc

    async def _with_retries(self, idempotent: bool, args: tuple[Any, ...]) -> httpx.Response:
        """One attempt, and the retries of an idempotent one. The first attempt is sent here: only one that is to be
        retried goes to tenacity, which gets it as its own first attempt (replayed, not sent again), so the attempts,
        waits and retry logs stay tenacity's. Running every call through tenacity (its per-attempt state and coroutine
        checks) cost 0.39 against 0.23 ms of CPU per upstream call (bench/upstream_first_attempt_ab.py,
        docs/performance.md), for the rare call that is retried."""
        retries = idempotent and self.settings.upstream_retries > 0
        first: httpx.Response | None = None
        failed: BaseException | None = None
        try:
            first = await self.send(*args)
        except BaseException as exc:
            if not (retries and retryable_error(exc)):
                raise
            failed = exc
        else:
            if not (retries and retryable_answer(first)):
                return first
        attempts = 0

        async def attempt(*call: Any) -> httpx.Response:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                return await self.send(*call)
            if failed is not None:
                raise failed
            assert first is not None
            return first

        # a copy per call, as tenacity's decorator makes: the retrying object keeps per-call state
        return await self._idempotent.copy()(attempt, *args)

    async def send(
        self, method: str, path: str, params: Any, headers: Mapping[str, str], content: bytes | None, json: Any, timeout: float | None
    ) -> httpx.Response:
        """One attempt, its whole answer read."""
        if self.test_client is not None:
            extra = {"timeout": timeout} if timeout is not None else {}
            return await self.test_client.request(method, path, params=params, headers=headers, content=content, json=json, **extra)
        if self.session is None:
            self.session = upstream_session(self.settings)
        extra = {"timeout": timeouts(timeout, timeout)} if timeout is not None else {}
        async with self.session.request(
            method, URL(self.base_url + path), params=params, headers=headers, data=content, json=json, allow_redirects=False, **extra
        ) as response:
            body = await response.read()
        return httpx.Response(response.status, headers=response.raw_headers, content=body)

    async def get_json(
        self, path: str, *, params: Any = None, headers: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> Any:
        """GET and decode JSON; a non-2xx answer raises Problem with the upstream's status."""
        response = await self.request("GET", path, params=params, headers=headers, timeout=timeout)
        if response.status_code == 422:  # the caller's input was rejected: keep the service's words so it can correct it
            raise validation_problem(self.name, response)
        if response.status_code >= 400:
            raise Problem(response.status_code, f"{self.name} answered {response.status_code}", upstream=self.name)
        try:
            return response.json()
        except ValueError:
            raise Problem(502, "Bad gateway", f"The {self.name} service sent invalid JSON.", upstream=self.name) from None

    async def aclose(self) -> None:
        if self.test_client is not None:
            await self.test_client.aclose()
        if self.session is not None:
            await self.session.close()


class Upstreams:
    """One Upstream per service, built once with the gateway's state and closed with it."""

    def __init__(self, settings: GatewaySettings, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None):
        transports = transports or {}
        signer = EdgeTokenSigner(settings.edge, issuer=settings.service_name)
        self.by_name = {name: Upstream(name, url, settings, transports.get(name), signer) for name, url in settings.upstream_urls().items()}

    def __getitem__(self, name: str) -> Upstream:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.by_name.values())

    async def aclose(self) -> None:
        await asyncio.gather(*(u.aclose() for u in self.by_name.values()), return_exceptions=True)
