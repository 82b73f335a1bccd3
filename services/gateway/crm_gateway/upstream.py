"""One pooled httpx.AsyncClient per upstream service; timeouts; retries only for idempotent methods.

Failures become problem+json: 503 when the service cannot be reached (connection refused, DNS,
pool exhausted), 504 when it is too slow, 502 when it answers with something that is not HTTP.

Under the client, plain-HTTP upstreams get `KeepAliveTransport`: an HTTP/1.1 keep-alive pool on asyncio
protocols with the httptools parser. httpcore's pool checked every pooled connection for readability (a
socket attribute lookup and a poll) on every request, a third of the gateway's CPU per proxied request at
16 connections under py-spy; here a connection learns that the upstream closed it from the event loop.
"""
from __future__ import annotations

import asyncio
import logging
import re
import select
from collections.abc import Mapping
from typing import Any

import httpx

from crm_common.context import current_correlation_id
from crm_common.edge import EdgeTokenSigner
from crm_common.problems import Problem
from crm_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

try:  # uvicorn[standard] brings it; without it the upstreams use httpx's own transport
    import httptools
except ImportError:  # pragma: no cover - depends on the installation
    httptools = None


HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADER_VALUE = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")
REQUEST_TARGET = re.compile(rb"/[\x21-\x7e]*")


def request_head(method: str, target: bytes, headers) -> bytes:
    """The request line and header block. A name or value with CR, LF or another control character is refused
    (LocalProtocolError, as h11 did): identity headers carry token claims, which must never add a header line."""
    if not REQUEST_TARGET.fullmatch(target):
        raise httpx.LocalProtocolError("invalid request target")
    lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if not HEADER_NAME.fullmatch(name) or not HEADER_VALUE.fullmatch(value):
            raise httpx.LocalProtocolError(f"invalid header {name[:40]!r}")
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


class _UpstreamConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: send a request, collect one whole response (status, raw headers, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._headers_complete = False
        self._waiter: asyncio.Future | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():  # nothing asked: the connection is not in a state to reuse
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            if self._headers_complete and not self._delimited():  # a body delimited by the end of the connection
                self._complete()
            else:
                self._fail(httpx.RemoteProtocolError("the upstream closed the connection before a complete response"))

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_complete = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self._parser.should_keep_alive()
        self._complete()

    # -- use
    async def exchange(self, head: bytes, body: bytes, timeout: float | None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        self._headers, self._body, self._headers_complete, self.reusable = [], [], False, False
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)
        try:
            async with asyncio.timeout(timeout):
                return await self._waiter
        except TimeoutError:
            raise httpx.ReadTimeout("the upstream did not answer in time") from None
        finally:
            self._waiter = None

    def idle_but_readable(self) -> bool:
        """An idle connection with something to read has been closed (or spoken to) by the upstream: not reusable.
        One poll of the chosen connection (httpcore polled them all)."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return True
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _delimited(self) -> bool:
        names = {name.lower() for name, _ in self._headers}
        return b"content-length" in names or b"transfer-encoding" in names

    def _complete(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._parser.get_status_code(), self._headers, b"".join(self._body)))

    def _fail(self, exc: Exception) -> None:
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connections to one plain-HTTP upstream, reused last-in first-out.

    At most `max_connections` at once (a request waits up to the pool timeout for one, then PoolTimeout), at most
    `max_keepalive` kept idle. Errors are httpx's: ConnectError, ConnectTimeout, PoolTimeout, ReadTimeout (the whole
    response within the read timeout), RemoteProtocolError. HEAD requests and streamed request bodies go through
    httpx's own transport (a response parser without the request method cannot tell that a HEAD answer has no body).
    """

    def __init__(self, *, max_connections: int = 100, max_keepalive: int = 20):
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self._idle: list[_UpstreamConnection] = []
        self._open = 0
        self._waiting: list[asyncio.Future] = []
        self._fallback = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD" or not isinstance(request.stream, httpx.ByteStream) or request.url.scheme != "http":
            return await self._fallback.handle_async_request(request)
        body = await request.aread()
        head = request_head(request.method, request.url.raw_path, request.headers.raw)
        status, headers, content = await self.send(request.url.host, request.url.port or 80, head, body, request.extensions.get("timeout", {}))
        return httpx.Response(status_code=status, headers=headers, stream=httpx.ByteStream(content), extensions={"http_version": b"HTTP/1.1"})

    async def send(self, host: str, port: int, head: bytes, body: bytes, timeouts: Mapping[str, float | None]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request (its head from request_head()) on a pooled connection: (status, raw headers, body)."""
        connection = await self._acquire(host, port, timeouts.get("connect"), timeouts.get("pool"))
        try:
            answer = await connection.exchange(head, body, timeouts.get("read"))
        except BaseException:
            connection.close()
            self._release(connection)
            raise
        self._release(connection)
        return answer

    async def _acquire(self, host: str, port: int, connect_timeout: float | None, pool_timeout: float | None) -> _UpstreamConnection:
        while True:
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed and not connection.idle_but_readable():
                    return connection
                connection.close()
                self._open -= 1
            if self._open < self.max_connections:
                self._open += 1
                try:
                    return await self._connect(host, port, connect_timeout)
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                async with asyncio.timeout(pool_timeout):
                    await waiter
            except TimeoutError:
                raise httpx.PoolTimeout("no upstream connection became free in time") from None
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: pass the free connection on
                raise
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)

    async def _connect(self, host: str, port: int, timeout: float | None) -> _UpstreamConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(_UpstreamConnection, host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from None
        return connection

    def _release(self, connection: _UpstreamConnection) -> None:
        if connection.reusable and not connection.closed and len(self._idle) < self.max_keepalive:
            self._idle.append(connection)
        else:
            connection.close()
            self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        for connection in self._idle:
            connection.close()
        self._open -= len(self._idle)
        self._idle.clear()
        await self._fallback.aclose()


IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# paths sent as they are on the direct path: already percent-encoded, no query, nothing httpx would rewrite
DIRECT_PATH = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
DEFAULT_USER_AGENT = f"python-httpx/{httpx.__version__}".encode()
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
    def __init__(self, name: str, base_url: str, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None,
                 signer: EdgeTokenSigner | None = None):
        self.name = name
        self.audience = settings.upstream_audiences()[name]
        self.signer = signer or EdgeTokenSigner(settings.edge, issuer=settings.service_name)
        self.base_url = base_url.rstrip("/")
        self.retries = settings.upstream_retries
        self.backoff_s = settings.upstream_retry_backoff_s
        self.timeout_s, self.connect_timeout_s = settings.upstream_timeout_s, settings.upstream_connect_timeout_s
        if transport is None and httptools is not None and self.base_url.startswith("http://"):
            transport = KeepAliveTransport(max_connections=settings.upstream_max_connections, max_keepalive=settings.upstream_max_keepalive)
        # the direct path (see _send_direct): the keep-alive pool without httpx's request building and cookie handling
        self.direct = transport if isinstance(transport, KeepAliveTransport) else None
        base = httpx.URL(self.base_url)
        self._address = (base.host, base.port or 80)
        self._base_path = base.raw_path.rstrip(b"/")
        self._host_header = base.netloc
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
        all_headers.update(self.signer.headers(self.audience, all_headers))  # the proof of this request and its identity
        extra = {"timeout": timeout} if timeout is not None else {}
        direct = self.direct is not None and json is None and method != "HEAD" and DIRECT_PATH.fullmatch(path) is not None
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                if direct:
                    response = await self._send_direct(method, path, params, all_headers, content, timeout)
                else:
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

    async def _send_direct(self, method: str, path: str, params: Any, headers: Mapping[str, str], content: bytes | None,
                           timeout: float | None) -> httpx.Response:
        """What client.request() sends, written straight to the keep-alive pool: the path (already URL-safe, see
        DIRECT_PATH) under the base URL's path, the query encoded by httpx.QueryParams, Host, Accept and User-Agent
        as httpx sets them unless given, Content-Length for a body. No Accept-Encoding: answers come unencoded."""
        target = self._base_path + path.encode("ascii")
        if params:
            query = str(httpx.QueryParams(params))
            if query:
                target += b"?" + query.encode("ascii")
        body = content or b""
        raw = [(b"Host", self._host_header)]
        given = {name.lower() for name in headers}
        if "accept" not in given:
            raw.append((b"Accept", b"*/*"))
        if "user-agent" not in given:
            raw.append((b"User-Agent", DEFAULT_USER_AGENT))
        raw += [(name.encode("ascii", "replace"), value.encode()) for name, value in headers.items() if name.lower() not in ("host", "content-length")]
        if body or method in ("POST", "PUT", "PATCH"):
            raw.append((b"Content-Length", str(len(body)).encode()))
        read = timeout if timeout is not None else self.timeout_s
        timeouts = {"connect": timeout if timeout is not None else self.connect_timeout_s, "read": read, "pool": read}
        status, response_headers, data = await self.direct.send(*self._address, request_head(method, target, raw), body, timeouts)
        return httpx.Response(status, headers=response_headers, content=data)

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
        signer = EdgeTokenSigner(settings.edge, issuer=settings.service_name)
        self.by_name = {name: Upstream(name, url, settings, transports.get(name), signer) for name, url in settings.upstream_urls().items()}

    def __getitem__(self, name: str) -> Upstream:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.by_name.values())

    async def aclose(self) -> None:
        await asyncio.gather(*(u.aclose() for u in self.by_name.values()), return_exceptions=True)
