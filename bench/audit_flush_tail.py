"""Does the read trail's flush make the status lookup's tail? Open-loop lookups against the complaints service alone,
the same offered rate on servers that differ only in their audit flush, in alternating rounds.

    .venv/bin/python bench/audit_flush_tail.py [--quick] [--rate 0] [--rounds 3] [--duration 15] [--variants flush,noflush]
        [--before PATH]

Variants (each its own uvicorn process of `crm_complaints.main:app`, all on one seeded database):
* `flush`: the code of this checkout;
* `noflush`: the same, `AuditTrail.flush` replaced by draining the queue without writing (the reads still queue;
  nothing reaches the database): the lookup without the flush's CPU and round trips;
* `before`: the code of another checkout (`--before`, a worktree at an earlier commit), its libs/common and
  services/complaints first on PYTHONPATH.
`--rate 0`: half of the closed-loop maximum of the first variant (4 connections). Per round and variant:
p50/p99/p99.9 from the due time (bench/openloop.py), CPU ms per lookup of the server (its idle CPU not taken out:
the flush is part of what a lookup costs), the load average.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import complaints_seed  # noqa: E402
import perfkit  # noqa: E402
from status_query import AGENT_HEADERS_DIRECT, cpu_seconds  # noqa: E402

NOFLUSH = """
import crm_common.audit as audit


async def _drain(self):
    n = 0
    while not self.queue.empty():
        self.queue.get_nowait()
        n += 1
    return n


audit.AuditTrail.flush = _drain
from crm_complaints.main import app  # noqa: E402
"""


def run(args) -> dict:
    count = args.complaints or (20_000 if args.quick else 100_000)
    log_dir = perfkit.log_dir_for("audit_flush_tail")
    shim = log_dir / "shim"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "noflush_app.py").write_text(NOFLUSH)
    loop = asyncio.new_event_loop()
    cm = perfkit.fresh_databases("complaints")
    urls = loop.run_until_complete(cm.__aenter__())
    results: dict[str, list[dict]] = {}
    try:
        sample = loop.run_until_complete(complaints_seed.seed(perfkit.asyncpg_dsn(urls["complaints"]), count))
        paths = [f"/complaints/lookup?tracking_number={t}" for t in sample["tracking"]]
        headers = perfkit.direct_headers("complaints", AGENT_HEADERS_DIRECT)
        with perfkit.local_broker(log_dir) as broker:
            env = perfkit.service_env("complaints", urls["complaints"], broker.bootstrap)
            servers = {}
            for name in args.variants.split(","):
                if name == "flush":
                    servers[name] = perfkit.Server(name, perfkit.APPS["complaints"], env, log_dir=log_dir)
                elif name == "noflush":
                    servers[name] = perfkit.Server(name, "noflush_app:app", env, log_dir=log_dir, extra_path=[shim])
                elif name == "before":
                    before = Path(args.before)
                    servers[name] = perfkit.Server(
                        name,
                        perfkit.APPS["complaints"],
                        env,
                        log_dir=log_dir,
                        extra_path=[before / "libs/common", before / "services/complaints"],
                    )
                else:
                    raise SystemExit(f"unknown variant {name}")
            with perfkit.servers(*servers.values()):
                for server in servers.values():
                    perfkit.http_load(server.url, paths, headers=headers, connections=4, duration_s=3)  # warm-up
                rate = args.rate
                if not rate:
                    first = next(iter(servers.values()))
                    closed = perfkit.http_load(first.url, paths, headers=headers, connections=4, duration_s=8)
                    rate = closed["rps"] / 2
                    print(f"[audit_flush_tail] closed-loop max {closed['rps']:.0f} req/s -> offered rate {rate:.0f} req/s", flush=True)
                for index in range(args.rounds):
                    order = list(servers.items()) if index % 2 == 0 else list(reversed(servers.items()))
                    for name, server in order:
                        load_before = os.getloadavg()[0]
                        cpu = cpu_seconds(server.process.pid)
                        measured = perfkit.open_loop(server.url, paths, rate=rate, duration_s=args.duration, headers=headers)
                        measured["cpu_ms_per_lookup"] = 1000 * (cpu_seconds(server.process.pid) - cpu) / max(1, measured["requests"])
                        measured["load"] = (load_before, os.getloadavg()[0])
                        measured["at"] = time.strftime("%H:%M:%S", time.gmtime())
                        results.setdefault(name, []).append(measured)
                        print(
                            f"[audit_flush_tail] round {index + 1} {name:8s} {measured['at']} "
                            f"load {load_before:.1f}->{measured['load'][1]:.1f}: "
                            f"{measured['rate']:.0f} req/s offered, {measured['achieved_rps']:.0f} achieved, p50 {measured['p50_ms']:.1f} "
                            f"p99 {measured['p99_ms']:.1f} p99.9 {measured['p999_ms']:.1f} max {measured['max_ms']:.1f} ms, "
                            f"CPU {measured['cpu_ms_per_lookup']:.2f} ms/lookup, errors {measured['errors']}, "
                            f"non-2xx {measured['non_2xx']}, "
                            f"send lag p99 {measured['send_lag_p99_ms']:.1f} ms",
                            flush=True,
                        )
    finally:
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()
    rows = []
    for name, rounds in results.items():
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"), ("cpu_ms_per_lookup", "CPU per lookup")):
            values = sorted(r[key] for r in rounds)
            rows.append(perfkit.row(f"{name}: {label} (median of {len(values)} rounds)", values[len(values) // 2], unit="ms"))
    return perfkit.result("audit_flush_tail", rows, figures={"complaints": count, "rounds": results})


def add_arguments(parser) -> None:
    parser.add_argument("--complaints", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0, help="offered lookups/s (0: half the closed-loop maximum)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--variants", default="flush,noflush")
    parser.add_argument("--before", default="", help="a checkout of an earlier commit, for the variant `before`")


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
