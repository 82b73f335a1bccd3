"""A/B of the read pool size on a read-heavy path: the complaints status lookup served directly.

The lookup reads through crm_common.db.Database.read() (asyncpg connections of a pool of its own, up to
COMPLAINTS_DB_READ_POOL_SIZE); the SQLAlchemy pool settings (size, overflow, pre-ping) this benchmark compared
until 2026-11-26 no longer touch the path (in the full run of 16:45 UTC its four variants all gave 873-1,229 req/s).

    .venv/bin/python bench/db_pool_ab.py [--quick] [--rounds 3] [--duration 5] [--connections 16]

One complaints database (bulk-loaded, bench/complaints_seed.py), one complaints server per variant (uvicorn,
uvloop, httptools), the same wrk load against each in turn, several rounds (so that background load on
the machine hits every variant alike). Printed: median req/s and p99 per variant, and the ratio to the
first variant (the defaults). Variants are environment settings of crm_common.settings.ServiceSettings.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import complaints_seed  # noqa: E402
import perfkit  # noqa: E402

VARIANTS = {
    "defaults (read pool 16)": {},
    "read pool 4": {"db_read_pool_size": "4"},
    "read pool 8": {"db_read_pool_size": "8"},
    "read pool 32": {"db_read_pool_size": "32"},
}


def run(args) -> dict:
    count = args.complaints or (20_000 if args.quick else 100_000)
    rounds = args.rounds or (2 if args.quick else 3)
    duration = args.duration or (4 if args.quick else 8)
    log_dir = perfkit.log_dir_for("db_pool_ab")

    async def main() -> dict:
        async with perfkit.fresh_databases("complaints") as urls:
            sample = await complaints_seed.seed(perfkit.asyncpg_dsn(urls["complaints"]), count)
            paths = [f"/complaints/lookup?tracking_number={t}" for t in sample["tracking"]]
            headers = perfkit.direct_headers("complaints", {"X-Actor-Id": "bench-agent", "X-Actor-Role": "agent"})
            with perfkit.local_broker(log_dir) as broker:
                await perfkit.prepare_topics(broker.bootstrap)
                servers = {
                    name: perfkit.Server(
                        f"complaints-{i}",
                        perfkit.APPS["complaints"],
                        perfkit.service_env("complaints", urls["complaints"], broker.bootstrap, run_scheduler="false", **env),
                        log_dir=log_dir,
                    )
                    for i, (name, env) in enumerate(VARIANTS.items())
                }
                results: dict[str, list[dict]] = {name: [] for name in servers}
                with perfkit.servers(*servers.values()):
                    for server in servers.values():  # warm-up
                        perfkit.http_load(server.url, paths, headers=headers, connections=args.connections, duration_s=2)
                    for round_ in range(rounds):
                        for name, server in servers.items():
                            load = await asyncio.to_thread(
                                perfkit.http_load, server.url, paths, headers=headers, connections=args.connections, duration_s=duration
                            )
                            results[name].append(load)
                            print(
                                f"[db_pool_ab] round {round_ + 1} {name}: {load['rps']:,.0f} req/s p99 {load['p99_ms']:.1f} ms", flush=True
                            )
            return results

    results = asyncio.run(main())
    names = list(VARIANTS)
    medians = {n: statistics.median(r["rps"] for r in results[n]) for n in names}
    p99 = {n: statistics.median(r["p99_ms"] for r in results[n]) for n in names}
    base = medians[names[0]]
    rows = []
    for name in names:
        rows.append(perfkit.row(f"lookup req/s, {name}", medians[name], baseline=base, unit="req/s"))
        rows.append(perfkit.row(f"lookup p99, {name}", p99[name], baseline=p99[names[0]], unit="ms"))
    return perfkit.result("db_pool_ab", rows, figures={"complaints": count, "rounds": rounds, "duration_s": duration, "raw": results})


def add_arguments(parser) -> None:
    parser.add_argument("--complaints", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--duration", type=float, default=0)
    parser.add_argument("--connections", type=int, default=16)


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
