"""Complaint filing under load: POST /api/v1/complaints through the gateway (agent JWT) to the complaints
service on PostgreSQL, with its outbox relay publishing ComplaintFiled to a private Tansu broker.

    .venv/bin/python bench/complaint_filing.py [--quick] [--connections 16] [--duration 20]

Load from a second process on loopback (wrk, else bench/loadgen.py), every request a different complaint of
one of 1,000 directory customers. The outbox backlog (rows with published_at IS NULL) is sampled every 0.5 s
during the load and until it drains: the relay keeps up when the backlog stays bounded and drains at the end.
Baseline (same run, same load generator and settings): a FastAPI endpoint returning a constant.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit  # noqa: E402
import status_query  # noqa: E402

CUSTOMERS = 1000
FIXED_RATE = 50  # requests/s: the "p99 < 50 ms at 50 req/s"


async def seed_directory(dsn: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO directory_customers (id, name, region, status, tier, credit_grade, erased, updated_at) "
            f"SELECT 'cust-' || lpad(g::text, 6, '0'), 'Shipper ' || g, 'East China', 'active', 'ordinary', 'B', false, now() "
            f"FROM generate_series(1, {CUSTOMERS}) AS g"
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def bodies(n: int, run: str) -> list[str]:
    categories = ["delay", "damage", "loss", "wrong_delivery", "missed_delivery", "billing", "pickup", "information"]
    return [
        json.dumps(
            {
                "customer_id": f"cust-{1 + i % CUSTOMERS:06d}",
                "category": categories[i % len(categories)],
                "channel": "call_center",
                "description": f"Parcel SF{run}{i:08d} arrived late; the customer asks for a callback.",
                "tracking_numbers": [f"SF{run}{i:08d}"],
                "reporter": {"name": f"Caller {i}", "phone": f"+86137{i:08d}"},
            }
        )
        for i in range(n)
    ]


async def backlog(dsn: str) -> tuple[int, int]:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow("SELECT count(*) FILTER (WHERE published_at IS NULL) AS pending, count(*) AS total FROM outbox")
        return row["pending"], row["total"]
    finally:
        await connection.close()


async def load_with_samples(
    gateway_url: str, dsn: str, headers: dict, body_list: list[str], connections: int, duration: float
) -> tuple[dict, list]:
    samples: list[tuple[float, int, int]] = []
    started = time.monotonic()
    task = asyncio.create_task(
        asyncio.to_thread(
            perfkit.http_load,
            gateway_url,
            ["/api/v1/complaints"],
            headers=headers,
            method="POST",
            bodies=body_list,
            connections=connections,
            duration_s=duration,
        )
    )
    while not task.done():
        pending, total = await backlog(dsn)
        samples.append((round(time.monotonic() - started, 2), pending, total))
        await asyncio.sleep(0.5)
    load = await task
    drain_deadline = time.monotonic() + 60
    while True:
        pending, total = await backlog(dsn)
        samples.append((round(time.monotonic() - started, 2), pending, total))
        if pending == 0 or time.monotonic() > drain_deadline:
            break
        await asyncio.sleep(0.5)
    return load, samples


def run(args) -> dict:
    duration = args.duration or (6 if args.quick else 20)
    log_dir = perfkit.log_dir_for("complaint_filing")
    base_levels, base_open = status_query.baseline(log_dir, [args.connections], duration)
    base = base_levels[args.connections]
    print(f"[complaint_filing] baseline: {base['rps']:,.0f} req/s p99 {base['p99_ms']:.1f} ms ({base['tool']})", flush=True)

    async def main() -> dict:
        async with perfkit.fresh_databases("gateway", "complaints") as urls:
            dsn = perfkit.asyncpg_dsn(urls["complaints"])
            await seed_directory(dsn)
            with perfkit.local_broker(log_dir) as broker:
                await perfkit.prepare_topics(broker.bootstrap)
                complaints = perfkit.Server(
                    "complaints",
                    perfkit.APPS["complaints"],
                    perfkit.service_env("complaints", urls["complaints"], broker.bootstrap),
                    log_dir=log_dir,
                )
                gateway = perfkit.Server(
                    "gateway",
                    perfkit.APPS["gateway"],
                    perfkit.service_env(
                        "gateway", urls["gateway"], broker.bootstrap, complaints_url=complaints.url, rate_limit_enabled="false"
                    ),
                    log_dir=log_dir,
                )
                with perfkit.servers(complaints, gateway):
                    headers = {"Authorization": "Bearer " + perfkit.agent_token(team="hotline"), "Content-Type": "application/json"}
                    import httpx

                    probe = httpx.post(gateway.url + "/api/v1/complaints", headers=headers, content=bodies(1, "probe")[0], timeout=20)
                    if probe.status_code != 201:
                        raise RuntimeError(f"filing probe failed: {probe.status_code} {probe.text[:500]}")
                    body_list = bodies(args.bodies, "w")
                    perfkit.http_load(
                        gateway.url,
                        ["/api/v1/complaints"],
                        headers=headers,
                        method="POST",
                        bodies=body_list[:500],
                        connections=args.connections,
                        duration_s=2,
                    )  # warm-up
                    profiles = (
                        [
                            perfkit.Profiler(server.process.pid, log_dir / f"profile-{server.name}", duration)
                            for server in (complaints, gateway)
                        ]
                        if args.profile
                        else []
                    )
                    for profile in profiles:
                        profile.__enter__()
                    load, samples = await load_with_samples(gateway.url, dsn, headers, body_list, args.connections, duration)
                    for profile in profiles:
                        profile.__exit__(None, None, None)
                    open_load = {"bodies": bodies(int(args.bodies), "o"), "headers": headers, "method": "POST"}
                    at_fixed = await asyncio.to_thread(
                        perfkit.open_loop, gateway.url, ["/api/v1/complaints"], rate=FIXED_RATE, duration_s=duration, **open_load
                    )
                    print(
                        f"[complaint_filing] open loop at {FIXED_RATE} req/s: p50 {at_fixed['p50_ms']:.1f} ms p99 "
                        f"{at_fixed['p99_ms']:.1f} ms "
                        f"p99.9 {at_fixed['p999_ms']:.1f} ms, errors {at_fixed['errors']}, non-2xx {at_fixed['non_2xx']}",
                        flush=True,
                    )
                    open_load["bodies"] = bodies(int(args.bodies), "s")
                    shares = await asyncio.to_thread(
                        perfkit.open_loop_levels,
                        "complaint_filing",
                        gateway.url,
                        ["/api/v1/complaints"],
                        max_rps=load["rps"],
                        duration_s=duration,
                        **open_load,
                    )
            return {"load": load, "samples": samples, "at_fixed": at_fixed, "shares": shares}

    out = asyncio.run(main())
    load, samples = out["load"], out["samples"]
    during = [p for t, p, _ in samples if t <= duration]
    max_backlog = max(during) if during else 0
    final_backlog = samples[-1][1]
    drain_s = samples[-1][0] - duration
    print(
        f"[complaint_filing] {load['rps']:,.0f} req/s p50 {load['p50_ms']:.1f} ms p99 {load['p99_ms']:.1f} ms, errors {load['errors']}",
        flush=True,
    )
    print("[complaint_filing] outbox backlog (s, pending, total): " + " ".join(f"{t}:{p}/{n}" for t, p, n in samples), flush=True)
    at_fixed = out["at_fixed"]
    rows = [
        perfkit.row(
            "filing maximum req/s (gateway, closed loop)",
            load["rps"],
            baseline=base["rps"],
            unit="req/s",
            target=">= 300 req/s",
            met=load["rps"] >= 300 and load["errors"] == 0,
        ),
        perfkit.row(
            f"filing p99 at {FIXED_RATE} req/s (gateway, open loop)",
            at_fixed["p99_ms"],
            unit="ms",
            target="< 50 ms",
            met=at_fixed["p99_ms"] < 50 and at_fixed["errors"] == 0 and at_fixed["non_2xx"] == 0,
        ),
        perfkit.row(f"filing p99.9 at {FIXED_RATE} req/s (gateway, open loop)", at_fixed["p999_ms"], unit="ms"),
        *perfkit.open_loop_rows("filing (gateway)", out["shares"], base_open),
        perfkit.row("filing req/s (gateway)", load["rps"], baseline=base["rps"], unit="req/s"),
        perfkit.row("filing p99 (gateway)", load["p99_ms"], baseline=base["p99_ms"], unit="ms"),
        perfkit.row("outbox backlog max during load", max_backlog, unit="rows", target="bounded, drained after", met=final_backlog == 0),
        perfkit.row("outbox drained after the load in", max(0.0, drain_s), unit="s"),
    ]
    return perfkit.result(
        "complaint_filing",
        rows,
        figures={
            "load": load,
            "baseline": base,
            "backlog_samples": samples,
            "duration_s": duration,
            "errors": load["errors"],
            "open_loop_fixed": at_fixed,
            "open_loop_shares": out["shares"],
        },
    )


def add_arguments(parser) -> None:
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=0)
    parser.add_argument("--bodies", type=int, default=20000, help="distinct complaint bodies cycled by the load")
    parser.add_argument("--profile", action="store_true", help="py-spy the complaints service and the gateway during the closed-loop load")


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
