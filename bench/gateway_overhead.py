"""What the gateway adds per request, in-process (no network): JWT check + authorization table +
rate limit + object check + proxying, compared with calling the same upstream app directly.

    .venv/bin/python bench/gateway_overhead.py [--requests 3000] [--concurrency 20]

Upstream: the fake profile service of the gateway tests (FastAPI, in memory). Printed: requests/s
and p50/p95/p99 latency for direct calls, agent calls through the gateway, customer calls (object
check) and the customer 360 (five upstream calls in parallel). CPU-bound on this machine: the
difference between rows is the gateway's cost, the absolute figures depend on the host.
Last, an A/B in alternating rounds: the agent call with the middleware forwarding straight to the proxy handler
(what the gateway does) and through the framework's router (forwarding switched off), CPU ms per request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services" / "gateway" / "tests"))


async def measure(client, path: str, headers: dict, n: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker():
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            response = await client.get(path, headers=headers)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, (path, response.status_code, response.text[:200])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started), latencies


def row(name: str, rps: float, latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100)
    return f"{name:<34} {rps:8.0f} req/s   p50 {1000 * q[49]:6.2f} ms   p95 {1000 * q[94]:6.2f} ms   p99 {1000 * q[98]:6.2f} ms"


async def main(args) -> None:
    import httpx

    from crm_gateway.main import create_app
    from crm_gateway.settings import GatewaySettings
    from gateway_support import FakeUpstreams, migrate, role_headers

    fakes = FakeUpstreams()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/gateway.db"
        await migrate(url)
        settings = GatewaySettings(
            database_url=url,
            rate_limit_enabled=True,
            rate_limits={r: (1e6, 1e6) for r in ("agent", "customer", "anonymous")},
            log_level="WARNING",
        )
        app = create_app(settings, start_background=False, transports=fakes.transports())
        gateway = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
        direct = httpx.AsyncClient(transport=httpx.ASGITransport(app=fakes.apps["profile"]), base_url="http://profile")
        agent, customer = role_headers(settings, "agent"), role_headers(settings, "customer")
        n, c = args.requests, args.concurrency
        await measure(gateway, "/api/v1/customers/C1", agent, 200, c)  # warm-up
        print(f"{n} requests, concurrency {c}, in-process ASGI (no sockets)")
        print(row("direct: profile GET /customers/C1", *(await measure(direct, "/customers/C1", {}, n, c))))
        print(row("gateway: agent GET customer", *(await measure(gateway, "/api/v1/customers/C1", agent, n, c))))
        print(row("gateway: customer GET own customer", *(await measure(gateway, "/api/v1/customers/C1", customer, n, c))))
        print(row("gateway: customer 360 (5 upstreams)", *(await measure(gateway, "/api/v1/customers/C1/360", agent, max(200, n // 5), c))))
        await forwarding_ab(app, gateway, agent, n, c)
        await gateway.aclose()
        await direct.aclose()
        await app.state.gateway.aclose()
        await app.state.runtime.db.dispose()


def auth_middleware(app):
    from crm_gateway.middleware import GatewayAuthMiddleware

    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, GatewayAuthMiddleware):
        layer = getattr(layer, "app", None)
    return layer


async def forwarding_ab(app, gateway, headers: dict, n: int, c: int, rounds: int = 3) -> None:
    middleware = auth_middleware(app)
    forward = middleware.forward
    cpu: dict[str, list[float]] = {"forwarded by the middleware": [], "through the router": []}
    for _ in range(rounds):
        for name in cpu:
            middleware.forward = forward if name.startswith("forwarded") else None
            started = time.process_time()
            rps, latencies = await measure(gateway, "/api/v1/customers/C1", headers, n, c)
            cpu[name].append(1000 * (time.process_time() - started) / n)
            print(row(f"A/B {name}", rps, latencies))
    middleware.forward = forward
    for name, values in cpu.items():
        print(f"A/B {name}: CPU per request (client + gateway + fake upstream) {statistics.median(values):.3f} ms (median of {rounds})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
