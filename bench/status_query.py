"""Call-center status query under load: GET /api/v1/complaints/lookup?tracking_number=... through the gateway
(agent JWT, authorization table) to the complaints service, with 100k complaints in PostgreSQL.

    .venv/bin/python bench/status_query.py [--quick] [--complaints 100000] [--connections 16] [--duration 15]

Gateway and complaints run as uvicorn subprocesses (uvloop, httptools, one worker each); complaints are
bulk-loaded into the complaints database (bench/complaints_seed.py); the load comes from a second process on
loopback (wrk when installed, else bench/loadgen.py), each request a random tracking number among 5,000.
The gateway's rate limiter is switched off (one agent token would otherwise be held to 30 requests/s).
Baseline (same run, same load generator and settings): bench/baseline_app.py, a FastAPI endpoint
returning a constant. Target: p99 < 25 ms and >= 30% of the baseline's requests/s.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import complaints_seed  # noqa: E402
import perfkit  # noqa: E402


def baseline(log_dir: Path, connections: int, duration: float) -> dict:
    server = perfkit.Server("baseline", "baseline_app:app", {}, log_dir=log_dir, extra_path=[perfkit.BENCH])
    with perfkit.servers(server):
        perfkit.http_load(server.url, ["/constant"], connections=connections, duration_s=2)
        return perfkit.http_load(server.url, ["/constant"], connections=connections, duration_s=duration)


async def prepare(count: int) -> tuple:
    cm = perfkit.fresh_databases("gateway", "complaints")
    urls = await cm.__aenter__()
    sample = await complaints_seed.seed(perfkit.asyncpg_dsn(urls["complaints"]), count)
    return cm, urls, sample


def run(args) -> dict:
    count = args.complaints or (20_000 if args.quick else 100_000)
    duration = args.duration or (5 if args.quick else 15)
    log_dir = perfkit.log_dir_for("status_query")
    base = baseline(log_dir, args.connections, duration)
    print(f"[status_query] baseline: {base['rps']:,.0f} req/s p99 {base['p99_ms']:.1f} ms ({base['tool']})", flush=True)
    loop = asyncio.new_event_loop()
    cm, urls, sample = loop.run_until_complete(prepare(count))
    try:
        with perfkit.local_broker(log_dir) as broker:
            complaints = perfkit.Server("complaints", perfkit.APPS["complaints"], perfkit.service_env("complaints", urls["complaints"], broker.bootstrap),
                                        log_dir=log_dir)
            gateway = perfkit.Server("gateway", perfkit.APPS["gateway"], perfkit.service_env(
                "gateway", urls["gateway"], broker.bootstrap, complaints_url=complaints.url, rate_limit_enabled="false"), log_dir=log_dir)
            with perfkit.servers(complaints, gateway):
                headers = {"Authorization": "Bearer " + perfkit.agent_token()}
                paths = [f"/api/v1/complaints/lookup?tracking_number={t}" for t in sample["tracking"]]
                import httpx

                probe = httpx.get(gateway.url + paths[0], headers=headers, timeout=10)
                if probe.status_code != 200 or len(probe.json()) != 1:
                    raise RuntimeError(f"lookup probe failed: {probe.status_code} {probe.text[:500]}")
                perfkit.http_load(gateway.url, paths, headers=headers, connections=args.connections, duration_s=2)  # warm-up
                load = perfkit.http_load(gateway.url, paths, headers=headers, connections=args.connections, duration_s=duration)
                # the complaints service alone (same query, no gateway), to split the cost
                direct_headers = {"X-Actor-Id": "bench-agent", "X-Actor-Role": "agent"}
                profile = perfkit.Profiler(complaints.process.pid, log_dir / "profile-complaints", duration) if args.profile else None
                if profile:
                    profile.__enter__()
                direct = perfkit.http_load(complaints.url, [p[len("/api/v1"):] for p in paths], headers=direct_headers,
                                           connections=args.connections, duration_s=duration)
                if profile:
                    profile.__exit__(None, None, None)
                    for frame, own, incl in perfkit.top_frames(log_dir / "profile-complaints.txt"):
                        print(f"  profile complaints: {incl:6.1%} incl {own:6.1%} self  {frame}", flush=True)
    finally:
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()
    print(f"[status_query] through the gateway: {load['rps']:,.0f} req/s p50 {load['p50_ms']:.1f} ms p99 {load['p99_ms']:.1f} ms, errors {load['errors']}", flush=True)
    print(f"[status_query] complaints service alone: {direct['rps']:,.0f} req/s p99 {direct['p99_ms']:.1f} ms", flush=True)
    rows = [
        perfkit.row("status query req/s (gateway)", load["rps"], baseline=base["rps"], unit="req/s", target=">= 30% of baseline",
                    met=load["rps"] >= 0.3 * base["rps"] and load["errors"] == 0),
        perfkit.row("status query p50 (gateway)", load["p50_ms"], baseline=base["p50_ms"], unit="ms"),
        perfkit.row("status query p99 (gateway)", load["p99_ms"], baseline=base["p99_ms"], unit="ms", target="< 25 ms", met=load["p99_ms"] < 25),
        perfkit.row("status query req/s (complaints alone)", direct["rps"], baseline=base["rps"], unit="req/s"),
        perfkit.row("status query p99 (complaints alone)", direct["p99_ms"], baseline=base["p99_ms"], unit="ms"),
    ]
    return perfkit.result("status_query", rows, figures={"complaints": count, "connections": args.connections, "duration_s": duration,
                                                         "gateway": load, "complaints_alone": direct, "baseline": base})


def add_arguments(parser) -> None:
    parser.add_argument("--complaints", type=int, default=0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=0)
    parser.add_argument("--profile", action="store_true", help="py-spy the complaints service during its direct load")


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
