"""Sustained ingestion: the highest rate the whole stack keeps up with, and the CPU each stage spends per event.

    .venv/bin/python bench/ingest_sustained.py [--quick] [--rates 500,1000,2000] [--hold 120] [--customers 5000] [--batch 100]
        [--profile 30]

The stack, one process per stage so that each one's CPU time is its own: the gateway's HTTP server (uvicorn, relay and
read-model consumer off), the gateway's relay (`python -m crm_gateway.worker`, consumers off), the Tansu broker,
scoring's consumer (`python -m crm_scoring.worker` with SCORING_RUN_RESCORING=false and its relay and scheduler off:
facts and rescoring marks), scoring's rescoring (`python -m crm_scoring.worker` with SCORING_RUN_CONSUMERS=false and
SCORING_RUN_RESCORING=true: the rescoring passes, the outbox relay that publishes their announcements and the recompute
scheduler), and the PostgreSQL backends serving the two databases (the benchmark's own score poll left out). The
marks are rows of `rescore_queue`, so the two scoring processes do between them what the one process does when they
share it; the rescoring's worker thread is counted with its process. The TMS is a second process
(bench/ingest_poster.py) posting batches on a fixed schedule: batch i is due at start + i * batch / rate whatever the
answers do (open loop).

For each offered rate, from the lowest: events are posted for --hold seconds (120 in full mode, 15 with --quick), then
the run waits until every one of them is scored. An event's score lag is the first rescoring of its customer at or
after its facts were committed, minus its batch's due time; its facts lag (printed beside it) is its inbox row's
`processed_at` minus the same due time, the part of the lag before rescoring. A rate is sustained when the score lag p99 is under 2 s,
every event was accepted and the backlog drained (events whose rescoring the 0.2 s score poll did not see are
reported as `unscored`, outside the lag, as in ingest_e2e.py); the search stops at the first rate that is not (--keep-going: all rates).
CPU per event per stage: each process's user + system CPU time (/proc/<pid>/stat) from the step's first due time until its
last event is scored, divided by the step's events. Target (issue 24): >= 5,000 events/s sustained for 120 s.
--profile S: py-spy records the consumer and the rescoring process for S seconds from the start of the last offered
rate (flame graphs and collapsed stacks in bench/results/logs/ingest_sustained/profile-{consumer,rescoring}.*; the
profiled step's figures are then not comparable with an unprofiled run's, py-spy pauses the processes to sample).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_e2e  # noqa: E402
import perfkit  # noqa: E402

LAG_LIMIT_S = 2.0
TARGET_EPS = 5_000


class Worker:
    """`python -m <module>` in a subprocess with a service's environment (a relay or consumer without HTTP)."""

    def __init__(self, name: str, module: str, env: dict[str, str], log_dir: Path):
        self.name, self.module, self.env, self.log_path = name, module, dict(os.environ) | env, log_dir / f"{name}.log"
        # no ops HTTP server (its default port 9000 would be taken by the second worker, or by anything else running)
        self.env[env_prefix(env) + "WORKER_HTTP_PORT"] = "0"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Worker:
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [perfkit.PYTHON, "-m", self.module],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=perfkit.REPO,
            start_new_session=True,
        )
        log.close()
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def env_prefix(env: dict[str, str]) -> str:
    """The service prefix of an environment made by perfkit.service_env (GATEWAY_, SCORING_...)."""
    return next(key.removesuffix("DATABASE_URL") for key in env if key.endswith("_DATABASE_URL"))


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from /proc/<pid>/stat (what psutil reads on Linux; not a dependency here);
    None when it has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces; fields[0] is field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


class CpuMeter:
    """User + system CPU seconds of named processes between `start()` and `stop()`; PostgreSQL backends are found
    by database name at each reading (a backend that ended in between is lost, one that started is counted whole).
    `not_counted`: backend pids that serve the benchmark itself (the score poll), left out of PostgreSQL's figure."""

    def __init__(self, pids: dict[str, int], admin_dsn: str, databases: list[str]):
        self.pids, self.admin_dsn, self.databases = pids, admin_dsn, databases
        self._start: dict[str, dict[int, float]] = {}
        self.not_counted: set[int] = set()

    async def _backends(self) -> list[int]:
        import asyncpg

        connection = await asyncpg.connect(self.admin_dsn)
        try:
            rows = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])", self.databases)
            return [r["pid"] for r in rows if r["pid"] not in self.not_counted]
        finally:
            await connection.close()

    async def reading(self) -> dict[str, dict[int, float]]:
        groups = {name: [pid] for name, pid in self.pids.items()}
        groups["postgresql"] = await self._backends()
        out: dict[str, dict[int, float]] = {}
        for name, pids in groups.items():
            out[name] = {}
            for pid in pids:
                seconds = cpu_seconds(pid)
                if seconds is not None:
                    out[name][pid] = seconds
        return out

    async def start(self) -> None:
        self._start = await self.reading()

    async def stop(self) -> dict[str, float]:
        end = await self.reading()
        return {name: sum(t - self._start.get(name, {}).get(pid, 0.0) for pid, t in pids.items()) for name, pids in end.items()}


async def hold_rate(
    args,
    rate: float,
    step: int,
    gateway: perfkit.Server,
    api_key: str,
    scoring_dsn: str,
    meter: CpuMeter,
    log_dir: Path,
    profiled: dict[str, int],
) -> dict:
    """One offered rate held for args.hold seconds; lag and CPU figures of its events."""
    events = max(args.batch, int(rate * args.hold) // args.batch * args.batch)
    items = perfkit.tms_items(events, args.customers, seed=args.seed + step, run=f"r{step}x{int(rate)}")
    base_count, _ = await ingest_e2e.inbox_rows(scoring_dsn)
    watcher = ingest_e2e.ScoreWatcher(scoring_dsn)
    watch_task = asyncio.create_task(watcher.run())
    meter.not_counted = {await watcher.server_pid()}
    await meter.start()
    profiles = (
        [perfkit.Profiler(pid, log_dir / f"profile-{name}", args.profile) for name, pid in profiled.items()]
        if args.profile and step == len(args.rate_list) - 1
        else []
    )
    for profile in profiles:
        profile.__enter__()
    started = time.time()
    work = log_dir / f"step-{step}"
    work.mkdir(exist_ok=True)
    batches = await asyncio.to_thread(
        ingest_e2e.post, gateway.url, api_key, items, batch=args.batch, concurrency=args.connections, work=work, rate=rate
    )
    accepted = sum(b["accepted"] for b in batches)
    refused = [b for b in batches if b["status"] != 200]
    drained = True
    try:
        await ingest_e2e.wait_for_inbox(scoring_dsn, base_count + accepted, stall_s=60, timeout_s=args.drain_timeout)
        deadline = time.monotonic() + args.drain_timeout
        while await watcher.queue_length() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # one more poll of the scores
    except TimeoutError as exc:
        drained = False
        print(f"[ingest_sustained] {rate:,.0f} events/s: not drained: {exc}", flush=True)
    cpu = await meter.stop()
    finished = time.time()
    for profile in profiles:
        profile.__exit__(None, None, None)
    watcher.stop()
    await watch_task
    committed = await ingest_e2e.commit_times(scoring_dsn)
    lags, facts_lags, unscored = [], [], 0  # facts lag: due time -> the consumer's inbox row (before any rescoring)
    for b in batches:
        for item in items[b["first"] : b["first"] + b["n"]]:
            facts_at = committed.get(item["event_id"])
            if facts_at is not None:
                facts_lags.append(facts_at - b["sent_at"])
            scored = watcher.score_time(item["payload"]["customer_id"], facts_at) if facts_at is not None else None
            if scored is None:
                unscored += 1
            else:
                lags.append(scored - b["sent_at"])
    p99 = perfkit.percentile(lags, 0.99)
    # an event whose customer's rescoring the watcher never saw after its facts (ingest_e2e counts these apart too) is
    # reported, not counted in the lag
    sustained = drained and not refused and accepted == events and p99 < LAG_LIMIT_S
    return {
        "rate": rate,
        "events": events,
        "accepted": accepted,
        "refused_batches": len(refused),
        "unscored": unscored,
        "posting_s": max(b["done_at"] for b in batches) - min(b["sent_at"] for b in batches),
        "late_p99_s": perfkit.percentile([b.get("late_s", 0.0) for b in batches], 0.99),
        "measured_s": finished - started,
        "lag_p50_s": perfkit.percentile(lags, 0.5),
        "lag_p99_s": p99,
        "lag_max_s": max(lags) if lags else float("nan"),
        "facts_lag_p50_s": perfkit.percentile(facts_lags, 0.5),
        "facts_lag_p99_s": perfkit.percentile(facts_lags, 0.99),
        "sustained": sustained,
        "cpu_s": cpu,
        "cpu_ms_per_event": {name: 1000 * seconds / events for name, seconds in cpu.items()},
    }


async def wait_rescored(dsn: str, timeout_s: float) -> None:
    """Until the warm-up's marks are all rescored (the rescoring process is up and scoring)."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout_s
        while await connection.fetchval("SELECT count(*) FROM rescore_queue") > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the warm-up was not rescored within {timeout_s:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


async def measure(args, log_dir: Path) -> dict:
    with perfkit.local_broker(log_dir) as broker:
        await perfkit.prepare_topics(broker.bootstrap, args.partitions)
        api_key, key_entry = perfkit.tms_api_key()
        async with perfkit.fresh_databases("gateway", "scoring") as urls:
            gateway_env = perfkit.service_env("gateway", urls["gateway"], broker.bootstrap, api_keys=[key_entry], db_pool_size="10")
            # the HTTP server only accepts (its relay and read-model consumer off); the relay runs alone in its own process
            http_env = gateway_env | {"GATEWAY_RUN_OUTBOX_RELAY": "false", "GATEWAY_RUN_CONSUMERS": "false"}
            gateway = perfkit.Server("gateway", perfkit.APPS["gateway"], http_env, log_dir=log_dir)
            relay_env = gateway_env | {"GATEWAY_RUN_CONSUMERS": "false"}
            scoring_env = perfkit.service_env("scoring", urls["scoring"], broker.bootstrap)
            # scoring's two stages apart (SCORING_RUN_RESCORING): the consumer only ingests facts and marks customers;
            # the rescoring process scores the marks and relays the announcements it stages (the consumer stages none)
            consumer_env = scoring_env | {
                "SCORING_RUN_RESCORING": "false",
                "SCORING_RUN_OUTBOX_RELAY": "false",
                "SCORING_RUN_SCHEDULER": "false",
            }
            rescoring_env = scoring_env | {"SCORING_RUN_CONSUMERS": "false", "SCORING_RUN_RESCORING": "true"}
            with (
                perfkit.servers(gateway),
                Worker("relay", "crm_gateway.worker", relay_env, log_dir) as relay,
                Worker("consumer", "crm_scoring.worker", consumer_env, log_dir) as consumer,
                Worker("rescoring", "crm_scoring.worker", rescoring_env, log_dir) as rescoring,
            ):
                scoring_dsn = perfkit.asyncpg_dsn(urls["scoring"])
                warm = perfkit.tms_items(200, 50, seed=3, run="warm")
                ingest_e2e.post(gateway.url, api_key, warm, batch=100, concurrency=1, work=log_dir)
                await ingest_e2e.wait_for_inbox(scoring_dsn, len(warm), stall_s=90)
                await wait_rescored(scoring_dsn, timeout_s=90)
                for worker in (relay, consumer, rescoring):
                    if worker.process.poll() is not None:
                        raise RuntimeError(f"{worker.name} ended (status {worker.process.returncode}); see {worker.log_path}")
                pids = {
                    "gateway": gateway.process.pid,
                    "relay": relay.process.pid,
                    "broker": broker.process.pid,
                    "consumer": consumer.process.pid,
                    "rescoring": rescoring.process.pid,
                }
                profiled = {"consumer": consumer.process.pid, "rescoring": rescoring.process.pid}
                databases = [url.rpartition("/")[2] for url in urls.values()]
                meter = CpuMeter(pids, perfkit.postgres_admin_url(), databases)
                steps = []
                for step, rate in enumerate(args.rate_list):
                    load = [round(x, 2) for x in os.getloadavg()]
                    print(f"[ingest_sustained] offering {rate:,.0f} events/s for {args.hold:.0f} s (load average {load})", flush=True)
                    result = await hold_rate(args, rate, step, gateway, api_key, scoring_dsn, meter, log_dir, profiled)
                    result["load_average"] = load
                    steps.append(result)
                    cpu = ", ".join(f"{name} {ms:.3f}" for name, ms in result["cpu_ms_per_event"].items())
                    print(
                        f"[ingest_sustained] {rate:,.0f} events/s: score lag p50 {result['lag_p50_s']:.2f} s "
                        f"p99 {result['lag_p99_s']:.2f} s "
                        f"max {result['lag_max_s']:.2f} s (facts lag p50 {result['facts_lag_p50_s']:.2f} s "
                        f"p99 {result['facts_lag_p99_s']:.2f} s), {result['unscored']} unscored, "
                        f"{result['refused_batches']} batches refused, "
                        f"poster late p99 {result['late_p99_s'] * 1000:.0f} ms; sustained: {result['sustained']}; CPU ms/event: {cpu}",
                        flush=True,
                    )
                    if not result["sustained"] and not args.keep_going:
                        break
    return {"steps": steps, "hold_s": args.hold, "batch": args.batch, "customers": args.customers}


def run(args) -> dict:
    args.hold = args.hold or (15.0 if args.quick else 120.0)
    args.customers = args.customers or (1_000 if args.quick else 5_000)
    args.rate_list = [float(r) for r in (args.rates or ("250,500,1000" if args.quick else "500,1000,1500,2000,3000,5000")).split(",")]
    figures = asyncio.run(measure(args, perfkit.log_dir_for("ingest_sustained")))
    steps = figures["steps"]
    held = [s["rate"] for s in steps if s["sustained"]]
    best = max(held, default=0.0)
    rows = [
        perfkit.row(
            f"highest rate sustained {args.hold:.0f} s with score lag p99 < {LAG_LIMIT_S:g} s",
            best,
            unit="events/s",
            target=f">= {TARGET_EPS:,} events/s held 120 s" if args.hold >= 120 else "",
            met=best >= TARGET_EPS if args.hold >= 120 else None,
        )
    ]
    for s in steps:
        rows.append(
            perfkit.row(
                f"offered {s['rate']:,.0f} events/s: score lag p99",
                s["lag_p99_s"] * 1000,
                unit="ms",
                target="< 2,000 ms",
                met=s["sustained"],
            )
        )
    # at the highest sustained rate; when none was, at the lowest offered (the stages' cost, queueing aside)
    top = next((s for s in steps if s["rate"] == best), steps[0] if steps else None)
    if top is not None:
        for name, ms in top["cpu_ms_per_event"].items():
            rows.append(perfkit.row(f"CPU per event at {top['rate']:,.0f} events/s offered: {name}", ms, unit="ms"))
    return perfkit.result("ingest_sustained", rows, figures=figures)


def add_arguments(parser) -> None:
    parser.add_argument("--rates", default="", help="comma-separated offered rates, events/s, ascending")
    parser.add_argument("--hold", type=float, default=0, help="seconds each rate is offered (default 120, --quick 15)")
    parser.add_argument("--keep-going", action="store_true", help="offer every rate even after one is not sustained")
    parser.add_argument("--customers", type=int, default=0)
    parser.add_argument("--batch", type=int, default=100, help="events per POST")
    parser.add_argument("--connections", type=int, default=16, help="the poster's connection limit")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="seconds a step may take to score its backlog")
    parser.add_argument(
        "--profile", type=float, default=0, help="py-spy the consumer and the rescoring for this many seconds of the last rate"
    )


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
