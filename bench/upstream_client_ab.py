"""CPU per proxied request of the gateway's upstream HTTP client, three implementations in one run:

  (a) the home-made keep-alive transport the gateway had until it moved to httpx (asyncio protocols + httptools;
      removed from the tree, loaded from git at --homemade-commit),
  (b) aiohttp's client as the gateway uses it (crm_gateway.upstream: a TCPConnector pool, no cookie jar, no compression),
  (c) httpx with a tuned pool (limits as the gateway's, HTTP/1.1 only, no transport retries, no env proxies, no cookies),
  and, for reference, httpx with its defaults. All four behind the same Upstream code (edge token, tenacity retries).

    .venv/bin/python bench/upstream_client_ab.py [--requests 3000] [--concurrency 16] [--rounds 3]

The upstream is bench/baseline_app.py under uvicorn in a subprocess (its CPU is not counted); the gateway runs
in this process. Two figures per implementation, CPU time of this process per request, median of alternating
rounds (the order rotates every round):
  * client: Upstream.request() alone (edge token, retry policy, the HTTP exchange), GET /complaints/lookup;
  * proxied: an agent GET /api/v1/complaints/lookup through the gateway app (an in-process httpx client on ASGI in
    front: the same for every implementation), the complaints upstream swapped for the implementation measured.
Ratios are against (a). (a) needs git and httptools (uvicorn[standard]).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit  # noqa: E402

sys.path.insert(0, str(perfkit.REPO / "services" / "gateway" / "tests"))

# the last commit whose crm_gateway/upstream.py has the home-made transport (KeepAliveTransport)
HOMEMADE_COMMIT = "ce6a6d3"
PATH = "/complaints/lookup"
PARAMS = {"tracking_number": "SF1"}


def homemade_module(commit: str):
    source = subprocess.run(
        ["git", "show", f"{commit}:services/gateway/crm_gateway/upstream.py"], cwd=perfkit.REPO, check=True, capture_output=True, text=True
    ).stdout
    spec = importlib.util.spec_from_loader("homemade_upstream", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{commit}:upstream.py", "exec"), module.__dict__)
    return module


class FormerSettings:
    """The gateway's settings with the one the home-made transport read and aiohttp has no use for."""

    upstream_max_keepalive = 20

    def __init__(self, settings):
        self._settings = settings

    def __getattr__(self, name: str):
        return getattr(self._settings, name)


def httpx_client(settings, url: str, tuned: bool):
    """httpx with its pool tuned: sized like the gateway's, HTTP/1.1 only, no retries in the
    transport, no proxy from the environment, no cookie jar, no compression asked; or httpx's defaults."""
    import http.cookiejar

    import httpx

    timeout = httpx.Timeout(settings.upstream_timeout_s, connect=settings.upstream_connect_timeout_s)
    if not tuned:
        return httpx.AsyncClient(base_url=url, timeout=timeout)
    limits = httpx.Limits(max_connections=settings.upstream_max_connections, max_keepalive_connections=20)
    return httpx.AsyncClient(
        base_url=url,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},
        transport=httpx.AsyncHTTPTransport(limits=limits, http1=True, http2=False, retries=0, trust_env=False),
        cookies=http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
    )


def implementations(settings, url: str) -> dict[str, Any]:
    from crm_common.edge import EdgeTokenSigner
    from crm_gateway.upstream import Upstream

    signer = EdgeTokenSigner(settings.edge, issuer=settings.service_name)
    homemade = homemade_module(HOMEMADE_COMMIT).Upstream("complaints", url, FormerSettings(settings), None, signer)
    assert homemade.direct is not None, "the home-made transport is not in use (httptools missing?)"
    impls = {
        "(a) home-made (asyncio + httptools)": homemade,
        "(b) aiohttp (the gateway's)": Upstream("complaints", url, settings, signer=signer),
    }
    for name, tuned in (("(c) httpx, tuned pool", True), ("httpx, defaults (reference)", False)):
        impls[name] = Upstream("complaints", url, settings, signer=signer)
        impls[name].test_client = httpx_client(settings, url, tuned)  # the Upstream's httpx path, on the network
    return impls


async def cpu_per_request(call, n: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms per request in this process, requests/s) for n calls, `concurrency` at a time."""
    remaining = iter(range(n))

    async def worker():
        for _ in remaining:
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return 1000 * (time.process_time() - cpu) / n, n / (time.perf_counter() - wall)


async def main(args) -> None:
    import httpx

    from crm_gateway.main import create_app
    from crm_gateway.objects import GATEWAY_IDENTITY
    from crm_gateway.settings import GatewaySettings
    from gateway_support import FakeUpstreams, migrate, role_headers

    log_dir = Path(tempfile.mkdtemp(prefix="upstream-ab-"))
    upstream = perfkit.Server("baseline", "baseline_app:app", {}, log_dir=log_dir, extra_path=[perfkit.BENCH])
    with perfkit.servers(upstream), tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/gateway.db"
        await migrate(url)
        settings = GatewaySettings(database_url=url, complaints_url=upstream.url, rate_limit_enabled=False, log_level="WARNING")
        app = create_app(settings, start_background=False, transports=FakeUpstreams().transports(complaints=None))
        gateway = app.state.gateway
        driver = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        agent = role_headers(settings, "agent")
        impls = implementations(settings, upstream.url)

        async def client_call(impl):
            response = await impl.request("GET", PATH, params=PARAMS, headers=GATEWAY_IDENTITY)
            assert response.status_code == 200, response.status_code

        async def proxied_call(impl):
            response = await driver.get("/api/v1" + PATH, params=PARAMS, headers=agent)
            assert response.status_code == 200, (response.status_code, response.text[:200])

        figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
        n, c = args.requests, args.concurrency
        names = list(impls)
        for impl in impls.values():  # warm-up: connections open, code paths taken
            await cpu_per_request(lambda impl=impl: client_call(impl), 200, c)
        print(
            f"{n} requests per figure, concurrency {c}, {args.rounds} alternating rounds; upstream {upstream.url} (baseline_app, uvicorn)"
        )
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                impl = impls[name]
                for kind, call in (("client", client_call), ("proxied", proxied_call)):
                    if kind == "proxied":
                        gateway.upstreams.by_name["complaints"] = impl
                    cpu, rps = await cpu_per_request(lambda call=call, impl=impl: call(impl), n, c)
                    figures.setdefault((name, kind), []).append((cpu, rps))
                    print(f"  round {round_ + 1} {name:<38} {kind:<8} {cpu:.3f} ms CPU/request  {rps:7.0f} req/s", flush=True)

        print()
        print(
            f"{'implementation':<38} {'client CPU ms/req':>18} {'ratio':>6} {'proxied CPU ms/req':>19} {'ratio':>6} {'proxied req/s':>14}"
        )
        base = {kind: statistics.median(cpu for cpu, _ in figures[(names[0], kind)]) for kind in ("client", "proxied")}
        result = {}
        for name in names:
            client = statistics.median(cpu for cpu, _ in figures[(name, "client")])
            proxied = statistics.median(cpu for cpu, _ in figures[(name, "proxied")])
            rps = statistics.median(r for _, r in figures[(name, "proxied")])
            result[name] = {"client_cpu_ms": round(client, 4), "proxied_cpu_ms": round(proxied, 4), "proxied_rps": round(rps)}
            print(f"{name:<38} {client:18.3f} {client / base['client']:6.2f} {proxied:19.3f} {proxied / base['proxied']:6.2f} {rps:14.0f}")
        print("RESULT", result)
        await driver.aclose()
        for impl in impls.values():
            await impl.aclose()
        await gateway.aclose()
        await app.state.runtime.db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    import uvloop  # the gateway's event loop in production (deploy/docker/entrypoint.sh)

    uvloop.run(main(parser.parse_args()))
