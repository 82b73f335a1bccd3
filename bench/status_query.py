"""Call-center status query under load: GET /api/v1/complaints/lookup?tracking_number=... through the gateway
(agent JWT, authorization table) to the complaints service, with 100k complaints in PostgreSQL.

    .venv/bin/python bench/status_query.py [--quick] [--complaints 100000] [--levels 1,4,16] [--connections 16] [--duration 15] [--profile]

Gateway and complaints run as uvicorn subprocesses (uvloop, httptools, one worker each); complaints are
bulk-loaded into the complaints database (bench/complaints_seed.py); the load comes from a second process on
loopback (wrk when installed, else bench/loadgen.py), each request a random tracking number among 5,000.
The gateway's rate limiter is switched off (one agent token would otherwise be held to 30 requests/s).

Every target is measured at each concurrency level of --levels (keep-alive connections of the load generator),
so that latency is read with its load: at 1 connection p99 is the cost of one request, at 16 it includes queueing.
Per level: the baseline, the query through the gateway, the complaints service alone, and the ceiling (the same
gateway proxying to a constant upstream that returns a captured lookup answer: the gateway hop without the
database). CPU per request of each server process comes from /proc/<pid>/stat before and after each load, less
its idle CPU (measured for 2 s before each series).
Baseline (same run, same load generator and settings): bench/baseline_app.py, a FastAPI endpoint
returning a constant. Target: p99 < 25 ms and >= 30% of the baseline's requests/s (headline: --connections).
--profile: an extra load at --connections with py-spy on the gateway and the complaints service (not counted).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import complaints_seed  # noqa: E402
import perfkit  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
AGENT_HEADERS_DIRECT = {"X-Actor-Id": "bench-agent", "X-Actor-Role": "agent"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by one process (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def idle_cpu_per_s(processes: dict[str, perfkit.Server], seconds: float = 2.0) -> dict[str, float]:
    """CPU seconds per second each process spends with no request (outbox relay, consumers, scheduler polling)."""
    before = {name: cpu_seconds(server.process.pid) for name, server in processes.items()}
    time.sleep(seconds)
    return {name: (cpu_seconds(server.process.pid) - before[name]) / seconds for name, server in processes.items()}


def measured_load(
    url: str,
    paths: list[str],
    *,
    headers: dict | None,
    connections: int,
    duration: float,
    processes: dict[str, perfkit.Server],
    idle: dict[str, float],
) -> dict:
    """One wrk load after a short warm-up, with the CPU milliseconds each named server process spent per request,
    its background (idle) CPU over the same seconds taken out."""
    perfkit.http_load(url, paths, headers=headers, connections=connections, duration_s=1)
    before = {name: cpu_seconds(server.process.pid) for name, server in processes.items()}
    load = perfkit.http_load(url, paths, headers=headers, connections=connections, duration_s=duration)
    for name, server in processes.items():
        used = cpu_seconds(server.process.pid) - before[name] - idle[name] * load["seconds"]
        load[f"cpu_ms_per_request_{name}"] = 1000 * used / load["requests"] if load["requests"] else float("nan")
    return load


def sweep(
    label: str,
    url: str,
    paths: list[str],
    *,
    headers: dict | None,
    levels: list[int],
    duration: float,
    processes: dict[str, perfkit.Server],
) -> dict[int, dict]:
    out = {}
    idle = idle_cpu_per_s(processes)
    print(f"[status_query] {label}: idle CPU " + ", ".join(f"{name} {1000 * v:.0f} ms/s" for name, v in idle.items()), flush=True)
    for connections in levels:
        load = out[connections] = measured_load(
            url, paths, headers=headers, connections=connections, duration=duration, processes=processes, idle=idle
        )
        cpu = ", ".join(f"{name} {load[f'cpu_ms_per_request_{name}']:.2f}" for name in processes)
        print(
            f"[status_query] {label} c={connections}: {load['rps']:,.0f} req/s p50 {load['p50_ms']:.1f} ms p99 {load['p99_ms']:.1f} ms, "
            f"errors {load['errors']}, CPU ms/request: {cpu} ({load['tool']})",
            flush=True,
        )
    return out


def profiled_load(
    url: str, paths: list[str], headers: dict, connections: int, duration: float, targets: dict[str, perfkit.Server], log_dir: Path
) -> None:
    profilers = [perfkit.Profiler(server.process.pid, log_dir / f"profile-{name}", duration) for name, server in targets.items()]
    for profiler in profilers:
        profiler.__enter__()
    perfkit.http_load(url, paths, headers=headers, connections=connections, duration_s=duration)
    for profiler in profilers:
        profiler.__exit__(None, None, None)
    for name in targets:
        collapsed = log_dir / f"profile-{name}.txt"
        if not collapsed.exists():
            print(f"  profile {name}: no samples ({collapsed})", flush=True)
            continue
        print(f"  profile {name} ({log_dir / f'profile-{name}.svg'}):", flush=True)
        for frame, own, incl in perfkit.top_frames(collapsed, limit=40):
            print(f"    {incl:6.1%} incl {own:6.1%} self  {frame}", flush=True)


def max_rate(loads: dict[int, dict]) -> float:
    return max(load["rps"] for load in loads.values())


def baseline(log_dir: Path, levels: list[int], duration: float) -> tuple[dict[int, dict], dict[float, dict]]:
    """The constant endpoint: closed-loop levels, then open loop at shares of its own maximum."""
    server = perfkit.Server("baseline", "baseline_app:app", {}, log_dir=log_dir, extra_path=[perfkit.BENCH])
    with perfkit.servers(server):
        perfkit.http_load(server.url, ["/constant"], connections=max(levels), duration_s=2)
        closed = sweep(
            "baseline (constant endpoint)",
            server.url,
            ["/constant"],
            headers=None,
            levels=levels,
            duration=duration,
            processes={"baseline": server},
        )
        opened = perfkit.open_loop_levels("status_query baseline", server.url, ["/constant"], max_rps=max_rate(closed), duration_s=duration)
        return closed, opened


async def prepare(count: int) -> tuple:
    cm = perfkit.fresh_databases("gateway", "complaints")
    urls = await cm.__aenter__()
    sample = await complaints_seed.seed(perfkit.asyncpg_dsn(urls["complaints"]), count)
    return cm, urls, sample


def gateway_server(name: str, urls: dict, bootstrap: str, complaints_url: str, log_dir: Path) -> perfkit.Server:
    return perfkit.Server(
        name,
        perfkit.APPS["gateway"],
        perfkit.service_env("gateway", urls["gateway"], bootstrap, complaints_url=complaints_url, rate_limit_enabled="false"),
        log_dir=log_dir,
    )


def probe(url: str, path: str, headers: dict) -> bytes:
    import httpx

    response = httpx.get(url + path, headers=headers, timeout=10)
    if response.status_code != 200 or len(response.json()) != 1:
        raise RuntimeError(f"lookup probe failed: {response.status_code} {response.text[:500]}")
    return response.content


def level_rows(label: str, loads: dict[int, dict], base: dict[int, dict], *, targets: bool) -> list[dict]:
    rows = []
    for connections, load in loads.items():
        b = base[connections]
        rows.append(
            perfkit.row(
                f"{label} req/s, {connections} conn",
                load["rps"],
                baseline=b["rps"],
                unit="req/s",
                target=">= 30% of baseline" if targets else "",
                met=(load["rps"] >= 0.3 * b["rps"] and load["errors"] == 0) if targets else None,
            )
        )
        rows.append(perfkit.row(f"{label} p50, {connections} conn", load["p50_ms"], baseline=b["p50_ms"], unit="ms"))
        rows.append(
            perfkit.row(
                f"{label} p99, {connections} conn",
                load["p99_ms"],
                baseline=b["p99_ms"],
                unit="ms",
                target="< 25 ms" if targets else "",
                met=load["p99_ms"] < 25 if targets else None,
            )
        )
    return rows


def cpu_rows(label: str, loads: dict[int, dict], name: str, base: dict[int, dict]) -> list[dict]:
    connections = max(loads)
    return [
        perfkit.row(
            f"{label}, CPU per request, {name}, {connections} conn",
            loads[connections][f"cpu_ms_per_request_{name}"],
            baseline=base[connections]["cpu_ms_per_request_baseline"],
            unit="ms",
        )
    ]


def run(args) -> dict:
    count = args.complaints or (20_000 if args.quick else 100_000)
    duration = args.duration or (5 if args.quick else 15)
    levels = sorted({int(x) for x in args.levels.split(",") if x.strip()} | {args.connections})
    log_dir = perfkit.log_dir_for("status_query")
    base, base_open = baseline(log_dir, levels, duration)
    loop = asyncio.new_event_loop()
    cm, urls, sample = loop.run_until_complete(prepare(count))
    headers = {"Authorization": "Bearer " + perfkit.agent_token()}
    paths = [f"/api/v1/complaints/lookup?tracking_number={t}" for t in sample["tracking"]]
    direct_paths = [p[len("/api/v1") :] for p in paths]
    body_file = Path(tempfile.mkstemp(prefix="lookup-body-", suffix=".json")[1])
    try:
        with perfkit.local_broker(log_dir) as broker:
            complaints = perfkit.Server(
                "complaints",
                perfkit.APPS["complaints"],
                perfkit.service_env("complaints", urls["complaints"], broker.bootstrap),
                log_dir=log_dir,
            )
            gateway = gateway_server("gateway", urls, broker.bootstrap, complaints.url, log_dir)
            with perfkit.servers(complaints, gateway):
                body_file.write_bytes(probe(gateway.url, paths[0], headers))
                perfkit.http_load(gateway.url, paths, headers=headers, connections=args.connections, duration_s=2)  # warm-up
                hops = {"gateway": gateway, "complaints": complaints}
                through = sweep(
                    "through the gateway", gateway.url, paths, headers=headers, levels=levels, duration=duration, processes=hops
                )
                through_open = perfkit.open_loop_levels(
                    "status_query gateway", gateway.url, paths, max_rps=max_rate(through), duration_s=duration, headers=headers
                )
                direct = sweep(
                    "complaints service alone",
                    complaints.url,
                    direct_paths,
                    headers=perfkit.direct_headers("complaints", AGENT_HEADERS_DIRECT),
                    levels=levels,
                    duration=duration,
                    processes={"complaints": complaints},
                )
                if args.profile:
                    profiled_load(gateway.url, paths, headers, args.connections, duration, hops, log_dir)
            # the ceiling: the same gateway, its complaints upstream a constant answer of the same bytes (no database)
            constant = perfkit.Server(
                "constant-upstream",
                "baseline_app:app",
                {"BASELINE_LOOKUP_BODY": str(body_file)},
                log_dir=log_dir,
                extra_path=[perfkit.BENCH],
            )
            ceiling_gateway = gateway_server("gateway-ceiling", urls, broker.bootstrap, constant.url, log_dir)
            with perfkit.servers(constant, ceiling_gateway):
                probe(ceiling_gateway.url, paths[0], headers)
                perfkit.http_load(ceiling_gateway.url, paths, headers=headers, connections=args.connections, duration_s=2)  # warm-up
                ceiling = sweep(
                    "ceiling: gateway -> constant upstream",
                    ceiling_gateway.url,
                    paths,
                    headers=headers,
                    levels=levels,
                    duration=duration,
                    processes={"gateway": ceiling_gateway, "upstream": constant},
                )
                if args.profile:
                    profiled_load(
                        ceiling_gateway.url, paths, headers, args.connections, duration, {"gateway-ceiling": ceiling_gateway}, log_dir
                    )
    finally:
        body_file.unlink(missing_ok=True)
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()

    head, head_base = through[args.connections], base[args.connections]
    all_p99_met = all(load["p99_ms"] < 25 for load in through.values())
    rows = [
        perfkit.row(
            "status query maximum req/s (gateway, closed loop)",
            max_rate(through),
            baseline=max_rate(base),
            unit="req/s",
            target=">= 1,500 req/s with 100,000 complaints" if count >= 100_000 else "",
            met=max_rate(through) >= 1500 if count >= 100_000 else None,
        ),
        *perfkit.open_loop_rows("status query (gateway)", through_open, base_open, targets={0.50: 10.0}),
        perfkit.row(
            "status query req/s (gateway)",
            head["rps"],
            baseline=head_base["rps"],
            unit="req/s",
            target=">= 30% of baseline",
            met=head["rps"] >= 0.3 * head_base["rps"] and head["errors"] == 0,
        ),
        perfkit.row("status query p50 (gateway)", head["p50_ms"], baseline=head_base["p50_ms"], unit="ms"),
        perfkit.row(
            "status query p99 (gateway)",
            head["p99_ms"],
            baseline=head_base["p99_ms"],
            unit="ms",
            target=f"< 25 ms at every level ({','.join(map(str, levels))} conn)",
            met=all_p99_met,
        ),
        perfkit.row("status query req/s (complaints alone)", direct[args.connections]["rps"], baseline=head_base["rps"], unit="req/s"),
        perfkit.row("status query p99 (complaints alone)", direct[args.connections]["p99_ms"], baseline=head_base["p99_ms"], unit="ms"),
        *level_rows("status query (gateway)", through, base, targets=True),
        *level_rows("status query (complaints alone)", direct, base, targets=False),
        *level_rows("ceiling: gateway -> constant upstream", ceiling, base, targets=False),
        *cpu_rows("status query (gateway)", through, "gateway", base),
        *cpu_rows("status query (gateway)", through, "complaints", base),
        *cpu_rows("ceiling", ceiling, "gateway", base),
    ]
    return perfkit.result(
        "status_query",
        rows,
        figures={
            "complaints": count,
            "levels": levels,
            "connections": args.connections,
            "duration_s": duration,
            "gateway": through,
            "complaints_alone": direct,
            "ceiling": ceiling,
            "baseline": base,
            "gateway_open_loop": through_open,
            "baseline_open_loop": base_open,
        },
    )


def add_arguments(parser) -> None:
    parser.add_argument("--complaints", type=int, default=0)
    parser.add_argument("--connections", type=int, default=16, help="the headline level (the rows without a level in their name)")
    parser.add_argument("--levels", default="1,4,16", help="concurrency levels, comma-separated; every one is reported")
    parser.add_argument("--duration", type=float, default=0)
    parser.add_argument(
        "--profile", action="store_true", help="an extra load with py-spy on the gateway and complaints (and the ceiling gateway)"
    )


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
