"""crm_gateway.upstream.KeepAliveTransport on real loopback sockets: what reaches the upstream, keep-alive reuse,
bounded connections, and every failure as the httpx error that Upstream turns into 502/503/504 problems."""
from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from crm_common.problems import Problem
from crm_common.testing import free_loopback_port, served_on_loopback
from crm_gateway.settings import GatewaySettings
from crm_gateway.upstream import KeepAliveTransport, Upstream

pytest.importorskip("httptools")


# ------------------------------------------------------------------ a real uvicorn upstream
CLIENT_PORTS: list[int] = []


async def echo(request: Request) -> Response:
    CLIENT_PORTS.append(request.client.port)
    body = await request.body()
    if request.query_params.get("slow"):
        await asyncio.sleep(float(request.query_params["slow"]))
    return JSONResponse({"method": request.method, "path": request.scope["path"], "query": list(request.query_params.multi_items()),
                         "headers": {k: v for k, v in request.headers.items() if k.startswith("x-")}, "body_len": len(body),
                         "body_head": body[:20].decode(errors="replace")}, headers={"ETag": '"e1"'})


async def chunked(request: Request) -> Response:
    async def parts():
        for i in range(3):
            yield f"part{i};".encode()
    return StreamingResponse(parts(), media_type="text/plain")


async def empty(request: Request) -> Response:
    return Response(status_code=204)


UPSTREAM = Starlette(routes=[Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
                             Route("/chunked", chunked), Route("/empty", empty, methods=["DELETE"])])


@pytest.fixture
async def upstream_url():
    async with served_on_loopback(UPSTREAM) as url:
        CLIENT_PORTS.clear()
        yield url


def _client(url: str, transport: KeepAliveTransport, **kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, transport=transport, **kw)


async def test_requests_arrive_whole_and_connections_are_reused(upstream_url):
    transport = KeepAliveTransport(max_connections=10, max_keepalive=10)
    async with _client(upstream_url, transport) as client:
        got = await client.get("/echo/a%3Fb/c", params=[("tracking_number", "SF 1+2/3"), ("tag", "x"), ("tag", "中")],
                               headers={"X-Actor-Id": "agent-1", "X-Correlation-ID": "cid-1"})
        assert got.status_code == 200 and got.headers["etag"] == '"e1"'
        assert got.json() == {"method": "GET", "path": "/echo/a?b/c", "query": [["tracking_number", "SF 1+2/3"], ["tag", "x"], ["tag", "中"]],
                              "headers": {"x-actor-id": "agent-1", "x-correlation-id": "cid-1"}, "body_len": 0, "body_head": ""}
        big = b"{" + b"x" * 200_000 + b"}"
        posted = await client.post("/echo/p", content=big, headers={"Content-Type": "application/json"})
        assert posted.json()["body_len"] == len(big) and posted.json()["method"] == "POST"
        assert (await client.put("/echo/p", content=b"abc")).json()["body_len"] == 3
        assert (await client.get("/chunked")).text == "part0;part1;part2;"
        deleted = await client.delete("/empty")
        assert deleted.status_code == 204 and deleted.content == b""
        head = await client.head("/echo/h")
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == '"e1"'
        for i in range(20):
            assert (await client.get(f"/echo/{i}")).json()["path"] == f"/echo/{i}"
    # echo saw GET, POST, PUT, HEAD (httpx's own transport), then 20 GETs: all but the HEAD on one keep-alive connection
    assert len(CLIENT_PORTS) == 24
    assert len(set(CLIENT_PORTS[:3] + CLIENT_PORTS[4:])) == 1


async def test_concurrent_requests_stay_within_max_connections(upstream_url):
    transport = KeepAliveTransport(max_connections=3, max_keepalive=3)
    async with _client(upstream_url, transport) as client:
        answers = await asyncio.gather(*(client.get(f"/echo/{i}", params={"slow": "0.02"}) for i in range(30)))
    assert [a.json()["path"] for a in answers] == [f"/echo/{i}" for i in range(30)]
    assert len(set(CLIENT_PORTS)) <= 3


async def test_pool_timeout_when_every_connection_is_busy(upstream_url):
    transport = KeepAliveTransport(max_connections=1, max_keepalive=1)
    async with _client(upstream_url, transport, timeout=httpx.Timeout(5.0, pool=0.1)) as client:
        slow = asyncio.create_task(client.get("/echo/slow", params={"slow": "0.5"}))
        await asyncio.sleep(0.1)
        with pytest.raises(httpx.PoolTimeout):
            await client.get("/echo/fast")
        assert (await slow).status_code == 200
        assert (await client.get("/echo/after")).status_code == 200  # the slot came back


async def test_read_timeout_and_a_cancelled_request_free_their_connection(upstream_url):
    transport = KeepAliveTransport(max_connections=1, max_keepalive=1)
    async with _client(upstream_url, transport, timeout=httpx.Timeout(0.1, connect=2.0, pool=2.0)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/echo/slow", params={"slow": "0.5"})
        task = asyncio.create_task(client.get("/echo/slow", params={"slow": "0.5"}))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await client.get("/echo/ok")).json()["path"] == "/echo/ok"


async def test_connection_refused_is_a_connect_error_and_a_503_problem():
    url = f"http://127.0.0.1:{free_loopback_port()}"
    transport = KeepAliveTransport()
    async with _client(url, transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/x")
    upstream = Upstream("complaints", url, GatewaySettings(upstream_retries=1, upstream_retry_backoff_s=0.0))
    assert isinstance(upstream.client._transport, KeepAliveTransport)
    with pytest.raises(Problem) as refused:
        await upstream.request("GET", "/complaints/lookup")
    assert refused.value.status == 503
    await upstream.aclose()


async def test_upstream_slow_through_upstream_is_a_504_problem(upstream_url):
    upstream = Upstream("complaints", upstream_url, GatewaySettings(upstream_timeout_s=0.1, upstream_retries=0))
    with pytest.raises(Problem) as slow:
        await upstream.request("GET", "/echo/s", params={"slow": "0.5"})
    assert slow.value.status == 504
    assert (await upstream.get_json("/echo/fine"))["path"] == "/echo/fine"
    await upstream.aclose()


# ------------------------------------------------------------------ raw servers for what uvicorn does not do
async def _raw_server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def test_an_upstream_that_closes_after_answering_gets_a_new_connection():
    connections = []

    async def handler(reader, writer):
        connections.append(writer)
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive by default, then closes anyway
        await writer.drain()
        writer.close()

    server, url = await _raw_server(handler)
    async with server, _client(url, KeepAliveTransport()) as client:
        for _ in range(3):
            assert (await client.get("/x")).text == "ok"
            await asyncio.sleep(0.01)  # the close reaches the client between two requests, as an idle timeout would
    assert len(connections) == 3


async def test_connection_close_and_close_delimited_bodies():
    async def handler(reader, writer):
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    server, url = await _raw_server(handler)
    async with server, _client(url, KeepAliveTransport()) as client:
        assert (await client.get("/x")).text == "until the end"
        assert (await client.get("/y")).text == "until the end"


async def test_garbage_and_truncated_answers_are_protocol_errors_and_502_problems():
    async def garbage(reader, writer):
        await _read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        writer.close()

    async def truncated(reader, writer):
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part")
        await writer.drain()
        writer.close()

    for handler in (garbage, truncated):
        server, url = await _raw_server(handler)
        async with server:
            async with _client(url, KeepAliveTransport()) as client:
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.get("/x")
            upstream = Upstream("profile", url, GatewaySettings(upstream_retries=0))
            with pytest.raises(Problem) as bad:
                await upstream.request("GET", "/x")
            assert bad.value.status == 502
            await upstream.aclose()


# ------------------------------------------------------------------ Upstream's direct path (no httpx request building)
async def _both(url: str):
    """The same upstream twice: the direct path, and httpx's client path over the same kind of transport."""
    settings = GatewaySettings(upstream_retries=0)
    direct, through_httpx = Upstream("complaints", url, settings), Upstream("complaints", url, settings)
    through_httpx.direct = None
    return direct, through_httpx


async def test_the_direct_path_sends_what_httpx_sends(upstream_url):
    direct, through_httpx = await _both(upstream_url)
    try:
        assert direct.direct is not None
        calls = [
            ("GET", "/echo/a%3Fb/c", {"params": [("tracking_number", "SF 1+2/3"), ("tag", "中"), ("empty", "")],
                                      "headers": {"X-Actor-Id": "agent-1", "user-agent": "console/1"}}),
            ("GET", "/echo/plain", {"params": {"customer_id": "C1", "limit": 50}}),
            ("POST", "/echo/p", {"content": b'{"a": 1}', "headers": {"content-type": "application/json"}}),
            ("POST", "/echo/empty", {}),
            ("DELETE", "/echo/d", {}),
            ("GET", "/echo/needs quoting/é", {}),  # not URL-safe: goes through httpx on both
        ]
        for method, path, kw in calls:
            a, b = await direct.request(method, path, **kw), await through_httpx.request(method, path, **kw)
            assert (a.status_code, a.json(), a.headers["etag"]) == (b.status_code, b.json(), b.headers["etag"]), (method, path)
        assert (await direct.get_json("/echo/x", params={"q": "1"}))["query"] == [["q", "1"]]
    finally:
        await direct.aclose()
        await through_httpx.aclose()


async def test_the_direct_path_keeps_the_base_path_and_correlation_id(upstream_url):
    from crm_common.context import correlation_id_var

    upstream = Upstream("profile", upstream_url + "/echo/base/", GatewaySettings())
    token = correlation_id_var.set("cid-42")
    try:
        got = (await upstream.request("GET", "/x/y", params={"a": "b"})).json()
    finally:
        correlation_id_var.reset(token)
        await upstream.aclose()
    assert got["path"] == "/echo/base/x/y" and got["query"] == [["a", "b"]] and got["headers"]["x-correlation-id"] == "cid-42"


async def test_header_injection_is_refused_before_anything_is_sent(upstream_url):
    direct, through_httpx = await _both(upstream_url)
    try:
        for upstream in (direct, through_httpx):
            for bad in ({"X-Actor-Team": "hotline\r\nX-Actor-Role: admin"}, {"X-Bad\r\nName": "v"}, {"X-Nul": "a\x00b"}):
                with pytest.raises(Problem) as refused:
                    await upstream.request("GET", "/echo/x", headers=bad)
                assert refused.value.status == 502
        assert CLIENT_PORTS == []
    finally:
        await direct.aclose()
        await through_httpx.aclose()
