"""CPU per request of the gateway's Upstream with every call run through tenacity (the code at --before, loaded from
git) and with the first attempt sent outside it (the tree's crm_gateway.upstream), in alternating rounds in one
process, so that both sides share the machine's load.

    .venv/bin/python bench/upstream_first_attempt_ab.py [--before e7d2238] [--requests 3000] [--concurrency 16] [--rounds 6]

Two figures per side, CPU time of this process per request, median of the rounds (the order alternates every round):
  * client: Upstream.request() alone, GET /complaints/lookup against bench/baseline_app.py under uvicorn in a
    subprocess (its CPU is not counted);
  * proxied: an agent GET /api/v1/complaints/lookup through the gateway app (an in-process httpx client on ASGI in
    front, the same for both sides), its complaints upstream swapped for the side measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit  # noqa: E402
from upstream_client_ab import PARAMS, PATH, cpu_per_request, homemade_module  # noqa: E402

sys.path.insert(0, str(perfkit.REPO / "services" / "gateway" / "tests"))


def load() -> tuple[float, ...]:
    return tuple(round(x, 2) for x in os.getloadavg())


async def main(args) -> None:
    import httpx

    from crm_common.edge import EdgeTokenSigner
    from crm_gateway.main import create_app
    from crm_gateway.objects import GATEWAY_IDENTITY
    from crm_gateway.settings import GatewaySettings
    from crm_gateway.upstream import Upstream
    from gateway_support import FakeUpstreams, migrate, role_headers

    log_dir = Path(tempfile.mkdtemp(prefix="upstream-first-attempt-ab-"))
    upstream = perfkit.Server("baseline", "baseline_app:app", {}, log_dir=log_dir, extra_path=[perfkit.BENCH])
    with perfkit.servers(upstream), tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/gateway.db"
        await migrate(url)
        settings = GatewaySettings(database_url=url, complaints_url=upstream.url, rate_limit_enabled=False, log_level="WARNING")
        app = create_app(settings, start_background=False, transports=FakeUpstreams().transports(complaints=None))
        gateway = app.state.gateway
        driver = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        agent = role_headers(settings, "agent")
        signer = EdgeTokenSigner(settings.edge, issuer=settings.service_name)
        sides = {
            f"every call through tenacity ({args.before})": homemade_module(args.before).Upstream(
                "complaints", upstream.url, settings, None, signer
            ),
            "first attempt outside tenacity (tree)": Upstream("complaints", upstream.url, settings, signer=signer),
        }

        async def client_call(side):
            response = await side.request("GET", PATH, params=PARAMS, headers=GATEWAY_IDENTITY)
            assert response.status_code == 200, response.status_code

        async def proxied_call(side):
            response = await driver.get("/api/v1" + PATH, params=PARAMS, headers=agent)
            assert response.status_code == 200, (response.status_code, response.text[:200])

        n, c = args.requests, args.concurrency
        names = list(sides)
        for side in sides.values():  # warm-up: connections open, code paths taken
            await cpu_per_request(lambda side=side: client_call(side), 200, c)
        print(f"{n} requests per figure, concurrency {c}, {args.rounds} alternating rounds, load average {load()}")
        figures: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                side = sides[name]
                gateway.upstreams.by_name["complaints"] = side
                for kind, call in (("client", client_call), ("proxied", proxied_call)):
                    cpu, rps = await cpu_per_request(lambda call=call, side=side: call(side), n, c)
                    figures.setdefault((name, kind), []).append(cpu)
                    print(f"  round {round_ + 1} {name:<42} {kind:<8} {cpu:.3f} ms CPU/request  {rps:7.0f} req/s", flush=True)
        print(f"load average {load()}")
        before, after = names
        for kind in ("client", "proxied"):
            b, a = statistics.median(figures[(before, kind)]), statistics.median(figures[(after, kind)])
            print(f"{kind:<8} median CPU ms/request: before {b:.3f}, after {a:.3f}, after/before {a / b:.3f}")
        await driver.aclose()
        for side in sides.values():
            await side.aclose()
        await gateway.aclose()
        await app.state.runtime.db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="e7d2238", help="the commit whose crm_gateway/upstream.py is the before side")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6)
    import uvloop  # the gateway's event loop in production (deploy/docker/entrypoint.sh)

    uvloop.run(main(parser.parse_args()))
