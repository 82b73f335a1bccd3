"""crm_gateway.upstream.Upstream on real loopback sockets (aiohttp, what production uses): what reaches the upstream,
keep-alive reuse, bounded connections, no cookies kept, retries for idempotent methods only, and every failure as the
502/503/504 problem the gateway answers with."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from crm_common.context import correlation_id_var
from crm_common.edge import EDGE_TOKEN_HEADER, EdgeTokenVerifier
from crm_common.problems import Problem
from crm_devbroker.testing import free_loopback_port, served_on_loopback
from crm_gateway.settings import GatewaySettings
from crm_gateway.upstream import Upstream

CLIENT_PORTS: list[int] = []
FLAKY: list[str] = []


async def echo(request: Request) -> Response:
    CLIENT_PORTS.append(request.client.port)
    body = await request.body()
    if request.query_params.get("slow"):
        await asyncio.sleep(float(request.query_params["slow"]))
    return JSONResponse(
        {
            "method": request.method,
            "path": request.scope["path"],
            "query": list(request.query_params.multi_items()),
            "headers": {k: v for k, v in request.headers.items() if k.startswith("x-") or k in ("cookie", "accept-encoding")},
            "body_len": len(body),
        },
        headers={"ETag": '"e1"', "Set-Cookie": "session=upstream-secret; Path=/"},
    )


async def chunked(request: Request) -> Response:
    async def parts():
        for i in range(3):
            yield f"part{i};".encode()

    return StreamingResponse(parts(), media_type="text/plain")


async def flaky(request: Request) -> Response:
    FLAKY.append(request.method)
    return Response(status_code=503) if len(FLAKY) == 1 else JSONResponse({"attempts": len(FLAKY)})


async def redirect(request: Request) -> Response:
    return Response(status_code=302, headers={"Location": "/echo/elsewhere"})


UPSTREAM = Starlette(
    routes=[
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
        Route("/chunked", chunked),
        Route("/flaky", flaky, methods=["GET", "POST"]),
        Route("/redirect", redirect),
    ]
)


@pytest.fixture
async def upstream_url():
    async with served_on_loopback(UPSTREAM) as url:
        CLIENT_PORTS.clear()
        FLAKY.clear()
        yield url


@pytest.fixture
async def make_upstream():
    made: list[Upstream] = []

    def make(url: str, **settings) -> Upstream:
        made.append(Upstream("complaints", url, GatewaySettings(**{"upstream_retry_backoff_s": 0.0, **settings})))
        return made[-1]

    yield make
    for upstream in made:
        await upstream.aclose()


async def test_requests_arrive_whole_signed_and_on_one_kept_alive_connection(upstream_url, make_upstream):
    upstream = make_upstream(upstream_url)
    token = correlation_id_var.set("cid-1")
    try:
        got = await upstream.request(
            "GET",
            "/echo/a%3Fb/c",
            params=[("tracking_number", "SF 1+2/3"), ("tag", "x"), ("tag", "中")],
            headers={"X-Actor-Id": "agent-1", "X-Forwarded-For": "203.0.113.9"},
        )
    finally:
        correlation_id_var.reset(token)
    body = got.json()
    assert got.status_code == 200 and got.headers["etag"] == '"e1"'
    assert body["path"] == "/echo/a?b/c" and body["query"] == [["tracking_number", "SF 1+2/3"], ["tag", "x"], ["tag", "中"]]
    assert body["headers"]["x-actor-id"] == "agent-1" and body["headers"]["x-forwarded-for"] == "203.0.113.9"
    assert body["headers"]["x-correlation-id"] == "cid-1" and "accept-encoding" not in body["headers"]
    verifier = EdgeTokenVerifier(upstream.settings.edge, audience=upstream.audience)
    assert verifier.verify(body["headers"][EDGE_TOKEN_HEADER.lower()])["x-actor-id"] == "agent-1"

    big = b"{" + b"x" * 200_000 + b"}"
    posted = await upstream.request("POST", "/echo/p", content=big, headers={"Content-Type": "application/json"})
    assert posted.json()["body_len"] == len(big) and posted.json()["method"] == "POST"
    assert (await upstream.request("PUT", "/echo/p", json={"a": 1})).json()["body_len"] == len('{"a": 1}')
    assert (await upstream.request("GET", "/chunked")).text == "part0;part1;part2;"
    head = await upstream.request("HEAD", "/echo/h")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == '"e1"'
    for i in range(20):
        assert (await upstream.get_json(f"/echo/{i}", params={"limit": 50}))["query"] == [["limit", "50"]]
    assert len(CLIENT_PORTS) == 24 and len(set(CLIENT_PORTS[1:])) == 1  # sequential requests: one keep-alive connection


async def test_an_upstream_cookie_is_never_sent_back(upstream_url, make_upstream):
    upstream = make_upstream(upstream_url)
    first = await upstream.request("GET", "/echo/one")
    assert "session=upstream-secret" in first.headers["set-cookie"]
    assert "cookie" not in (await upstream.request("GET", "/echo/two")).json()["headers"]


async def test_redirects_are_returned_not_followed(upstream_url, make_upstream):
    answer = await make_upstream(upstream_url).request("GET", "/redirect")
    assert answer.status_code == 302 and answer.headers["location"] == "/echo/elsewhere"


async def test_concurrent_requests_stay_within_max_connections(upstream_url, make_upstream):
    upstream = make_upstream(upstream_url, upstream_max_connections=3)
    answers = await asyncio.gather(*(upstream.request("GET", f"/echo/{i}", params={"slow": "0.02"}) for i in range(30)))
    assert [a.json()["path"] for a in answers] == [f"/echo/{i}" for i in range(30)]
    assert len(set(CLIENT_PORTS)) <= 3


async def test_a_5xx_answer_is_retried_for_idempotent_methods_only(upstream_url, make_upstream):
    upstream = make_upstream(upstream_url, upstream_retries=2)
    assert (await upstream.request("GET", "/flaky")).json() == {"attempts": 2}
    FLAKY.clear()
    assert (await upstream.request("POST", "/flaky")).status_code == 503  # a write is sent once; its answer is returned
    assert FLAKY == ["POST"]


async def test_only_a_call_to_retry_goes_through_tenacity_its_first_attempt_counted_once(upstream_url, make_upstream, monkeypatch, caplog):
    """The first attempt is sent outside tenacity (its per-call cost, docs/performance.md); one to retry is handed to
    tenacity as its first attempt, not sent again, so the attempts and the retry log are the configured ones."""
    upstream = make_upstream(upstream_url, upstream_retries=2)
    copies: list[int] = []
    copy = upstream._idempotent.copy
    monkeypatch.setattr(upstream._idempotent, "copy", lambda: copies.append(1) or copy())
    assert (await upstream.request("GET", "/echo/a")).status_code == 200
    assert copies == []
    with caplog.at_level("WARNING", logger="crm_gateway.upstream"):
        assert (await upstream.request("GET", "/flaky")).json() == {"attempts": 2}
    assert copies == [1] and FLAKY == ["GET", "GET"]
    assert [r.getMessage() for r in caplog.records] == ["upstream complaints GET /flaky failed (attempt 1), retrying: status 503"]

    refused = make_upstream(f"http://127.0.0.1:{free_loopback_port()}", upstream_retries=2)
    caplog.clear()
    with caplog.at_level("WARNING", logger="crm_gateway.upstream"), pytest.raises(Problem):
        await refused.request("GET", "/x")
    retried = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert [m.split("(attempt ")[1][0] for m in retried] == ["1", "2"]  # three attempts in all: two retries


async def test_connection_refused_is_a_503_problem_after_the_retries(make_upstream):
    upstream = make_upstream(f"http://127.0.0.1:{free_loopback_port()}", upstream_retries=1)
    with pytest.raises(Problem) as refused:
        await upstream.request("GET", "/complaints/lookup")
    assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "2"


async def test_a_slow_upstream_is_a_504_problem_and_the_connection_is_usable_after(upstream_url, make_upstream):
    upstream = make_upstream(upstream_url, upstream_timeout_s=0.2, upstream_retries=0)
    with pytest.raises(Problem) as slow:
        await upstream.request("GET", "/echo/s", params={"slow": "1.0"})
    assert slow.value.status == 504
    with pytest.raises(Problem) as slow_per_call:
        await make_upstream(upstream_url, upstream_retries=0).request("GET", "/echo/s", params={"slow": "1.0"}, timeout=0.2)
    assert slow_per_call.value.status == 504
    assert (await upstream.get_json("/echo/fine"))["path"] == "/echo/fine"


# ------------------------------------------------------------------ raw servers for what uvicorn does not do
async def _raw_server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_garbage_and_truncated_answers_are_502_problems(make_upstream):
    async def garbage(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        writer.close()

    async def truncated(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part")
        await writer.drain()
        writer.close()

    async def smuggled(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\nok")
        await writer.drain()
        writer.close()

    for handler in (garbage, truncated, smuggled):
        server, url = await _raw_server(handler)
        async with server:
            with pytest.raises(Problem) as bad:
                await make_upstream(url, upstream_retries=0).request("GET", "/x")
            assert bad.value.status == 502, handler.__name__


async def test_an_upstream_that_closes_kept_alive_connections_gets_new_ones(make_upstream):
    connections = []

    async def handler(reader, writer):
        connections.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive by default, then closes anyway
        await writer.drain()
        writer.close()

    server, url = await _raw_server(handler)
    async with server:
        upstream = make_upstream(url)
        for _ in range(3):
            assert (await upstream.request("GET", "/x")).text == "ok"
            await asyncio.sleep(0.05)  # the close reaches the client between two requests, as an idle timeout would
    assert len(connections) == 3


async def test_header_injection_is_refused_before_anything_is_sent(upstream_url, make_upstream):
    upstream = make_upstream(upstream_url)
    for bad in (
        {"X-Actor-Team": "hotline\r\nX-Actor-Role: admin"},
        {"X-Actor-Team": "hotline\nX-Actor-Role: admin"},
        {"X-Bad\r\nName": "v"},
    ):
        with pytest.raises(Problem) as refused:
            await upstream.request("GET", "/echo/x", headers=bad)
        assert refused.value.status == 502, bad
    assert CLIENT_PORTS == []


async def test_one_session_per_upstream_for_the_apps_lifetime_closed_when_it_stops(upstream_url, tmp_path):
    from crm_gateway.main import create_app

    settings = GatewaySettings(database_url=f"sqlite:///{tmp_path}/gateway.db", complaints_url=upstream_url, profile_url=upstream_url)
    app = create_app(settings, start_background=False)
    upstreams = app.state.gateway.upstreams
    for _ in range(3):
        await upstreams["complaints"].request("GET", "/echo/a")
        await upstreams["profile"].request("GET", "/echo/b")
    sessions = [upstreams["complaints"].session, upstreams["profile"].session]
    assert None not in sessions and sessions[0] is not sessions[1] and not any(s.closed for s in sessions)
    assert len(set(CLIENT_PORTS)) == 2  # each upstream kept its one connection across calls
    await app.state.runtime.stop(grace_s=1.0)
    assert all(s.closed for s in sessions)
