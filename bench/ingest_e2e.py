"""Event ingestion end to end: TMS batches -> gateway (POST /api/v1/events, tms API key) -> outbox -> Kafka
-> scoring consumer -> facts and scores committed in PostgreSQL.

    .venv/bin/python bench/ingest_e2e.py [--quick] [--events 100000] [--customers 5000] [--batch 500] [--concurrency 4] [--profile 15]

Gateway and scoring run as uvicorn subprocesses (uvloop, httptools) on fresh PostgreSQL databases, against a
private Tansu broker; the TMS is a second process (bench/ingest_poster.py). An event's facts are committed at
its scoring inbox row's `processed_at`; its score is committed at the first rescoring of its customer at or
after that (customer_scores.computed_at, polled every 0.2 s; scoring rescores marked customers apart from
the inbox transaction). The run ends when every event is in the inbox and the rescore queue is empty.

Figures: end-to-end events/s (events / (last score commit - first post)), gateway acceptance rate, facts rate,
p50/p99 lag from post to committed score (and to committed facts). Baseline (same run, same broker): raw aiokafka
produce+consume rate (bench/raw_kafka.py).
Target: >= 10,000 events/s and >= 25% of the raw rate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit  # noqa: E402
import raw_kafka  # noqa: E402


async def inbox_rows(dsn: str, consumer: str = "scoring") -> tuple[int, float | None]:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow("SELECT count(*) AS n, max(processed_at) AS last FROM inbox WHERE consumer = $1", consumer)
        return row["n"], (row["last"].timestamp() if row["last"] else None)
    finally:
        await connection.close()


async def events_per_transaction(dsn: str, consumer: str = "scoring", since: float | None = None) -> float:
    """Mean events per consumer transaction: the rows of one claim share its processed_at."""

    import asyncpg

    after = dt.datetime.fromtimestamp(since or 0, dt.UTC)
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT processed_at) AS transactions FROM inbox WHERE consumer = $1 AND processed_at >= $2",
            consumer,
            after,
        )
        return row["n"] / row["transactions"] if row["transactions"] else float("nan")
    finally:
        await connection.close()


async def commit_times(dsn: str, consumer: str = "scoring") -> dict[str, float]:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT event_id, processed_at FROM inbox WHERE consumer = $1", consumer)
        return {r["event_id"]: r["processed_at"].timestamp() for r in rows}
    finally:
        await connection.close()


class ScoreWatcher:
    """Polls customer_scores every 0.2 s and keeps every distinct computed_at seen per customer, so that the
    moment an event's score was committed is the first rescoring of its customer at or after the event's
    facts were committed (inbox processed_at). Scoring rescoring may run apart from the inbox transaction
    (debounced `rescore_queue`); when it runs inside it, both moments coincide."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.seen: dict[str, list[float]] = {}
        self._stop = asyncio.Event()
        self.has_queue = True
        self._connected = asyncio.Event()
        self._server_pid = 0

    async def server_pid(self) -> int:
        """The PostgreSQL backend of the poll, once connected (ingest_sustained leaves its CPU out of the stages')."""
        await asyncio.wait_for(self._connected.wait(), 30)
        return self._server_pid

    async def run(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.dsn)
        self._server_pid = connection.get_server_pid()
        self._connected.set()
        try:
            while not self._stop.is_set():
                for row in await connection.fetch("SELECT customer_id, computed_at FROM customer_scores"):
                    times = self.seen.setdefault(row["customer_id"], [])
                    t = row["computed_at"].timestamp()
                    if not times or times[-1] != t:
                        times.append(t)
                try:
                    await asyncio.wait_for(self._stop.wait(), 0.2)
                except TimeoutError:
                    pass
        finally:
            await connection.close()

    def stop(self) -> None:
        self._stop.set()

    async def queue_length(self) -> int:
        import asyncpg

        connection = await asyncpg.connect(self.dsn)
        try:
            if not self.has_queue:
                return 0
            try:
                return await connection.fetchval("SELECT count(*) FROM rescore_queue")
            except asyncpg.UndefinedTableError:  # a scoring version that rescores inside the inbox transaction
                self.has_queue = False
                return 0
        finally:
            await connection.close()

    def score_time(self, customer_id: str, facts_at: float) -> float | None:
        for t in self.seen.get(customer_id, []):
            if t >= facts_at - 1e-6:
                return t
        return None


async def wait_for_inbox(dsn: str, expected: int, *, stall_s: float = 60.0, timeout_s: float = 1800.0, progress=None) -> None:
    started = time.monotonic()
    last_count, last_change = -1, time.monotonic()
    while True:
        count, _ = await inbox_rows(dsn)
        if count != last_count:
            last_count, last_change = count, time.monotonic()
            if progress:
                progress(count)
        if count >= expected:
            return
        if time.monotonic() - last_change > stall_s or time.monotonic() - started > timeout_s:
            raise TimeoutError(f"scoring applied {count}/{expected} events; no progress for {time.monotonic() - last_change:.0f}s")
        await asyncio.sleep(0.25)


def post(
    base_url: str, api_key: str, items: list[dict], *, batch: int, concurrency: int, work: Path, rate: float | None = None
) -> list[dict]:
    """bench/ingest_poster.py in its own process: as fast as the gateway answers, or at `rate` events/s (open loop)."""
    items_file, out_file, spec_file = work / "items.json", work / "batches.jsonl", work / "spec.json"
    items_file.write_text(json.dumps(items))
    spec_file.write_text(
        json.dumps(
            {
                "base_url": base_url,
                "api_key": api_key,
                "items_file": str(items_file),
                "batch": batch,
                "concurrency": concurrency,
                "out_file": str(out_file),
                "rate": rate,
            }
        )
    )
    completed = subprocess.run(
        [perfkit.PYTHON, str(perfkit.BENCH / "ingest_poster.py"), str(spec_file)], capture_output=True, text=True, timeout=3600
    )
    if completed.returncode != 0:
        raise RuntimeError(f"poster failed: {completed.stdout}\n{completed.stderr}")
    return [json.loads(line) for line in out_file.read_text().splitlines() if line]


async def measure(args, log_dir: Path) -> dict:
    events = args.events or (6_000 if args.quick else 100_000)
    customers = args.customers or (1_000 if args.quick else 5_000)
    with perfkit.local_broker(log_dir) as broker:
        await perfkit.prepare_topics(broker.bootstrap, args.partitions)
        # baseline first, while nothing else runs: the same broker, the same number of records
        raw = await raw_kafka.measure(broker.bootstrap, events, 450, args.partitions)
        print(f"[ingest_e2e] raw baseline: {raw['produce_consume_eps']:,.0f} events/s produce+consume", flush=True)
        api_key, key_entry = perfkit.tms_api_key()
        async with perfkit.fresh_databases("gateway", "scoring") as urls:
            gateway = perfkit.Server(
                "gateway",
                perfkit.APPS["gateway"],
                perfkit.service_env("gateway", urls["gateway"], broker.bootstrap, api_keys=[key_entry], db_pool_size="10"),
                log_dir=log_dir,
            )
            scoring = perfkit.Server(
                "scoring", perfkit.APPS["scoring"], perfkit.service_env("scoring", urls["scoring"], broker.bootstrap), log_dir=log_dir
            )
            with perfkit.servers(gateway, scoring):
                scoring_dsn = perfkit.asyncpg_dsn(urls["scoring"])
                # warm-up: the consumer joins its group and every code path is loaded
                warm = perfkit.tms_items(200, 50, seed=3, run="warm")
                post(gateway.url, api_key, warm, batch=100, concurrency=1, work=log_dir)
                await wait_for_inbox(scoring_dsn, len(warm), stall_s=90)
                base_count, _ = await inbox_rows(scoring_dsn)

                items = perfkit.tms_items(events, customers, seed=args.seed)
                watcher = ScoreWatcher(scoring_dsn)
                watch_task = asyncio.create_task(watcher.run())
                print(
                    f"[ingest_e2e] posting {events} events ({customers} customers) in batches of {args.batch}, {args.concurrency} "
                    "connections",
                    flush=True,
                )
                profiles = (
                    [
                        perfkit.Profiler(server.process.pid, log_dir / f"profile-{server.name}", args.profile)
                        for server in (gateway, scoring)
                    ]
                    if args.profile
                    else []
                )
                for profile in profiles:
                    profile.__enter__()
                batches = post(gateway.url, api_key, items, batch=args.batch, concurrency=args.concurrency, work=log_dir)
                accepted = sum(b["accepted"] for b in batches)
                bad = [b for b in batches if b["status"] != 200]
                if bad:
                    raise RuntimeError(f"{len(bad)} batches refused, e.g. {bad[0]}")
                first_post = min(b["sent_at"] for b in batches)
                last_answer = max(b["done_at"] for b in batches)
                await wait_for_inbox(scoring_dsn, base_count + accepted, progress=lambda n: None)
                committed = await commit_times(scoring_dsn)
                per_transaction = await events_per_transaction(scoring_dsn, since=min(b["sent_at"] for b in batches))
                print(f"[ingest_e2e] scoring consumer: {per_transaction:,.0f} events per transaction", flush=True)
                # then every marked customer rescored (debounced rescoring), and one more poll of the scores
                deadline = time.monotonic() + 600
                while await watcher.queue_length() > 0 and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.5)
                watcher.stop()
                await watch_task
                for profile in profiles:
                    profile.__exit__(None, None, None)
    sent_at: dict[str, tuple[float, str]] = {}
    for b in batches:
        for item in items[b["first"] : b["first"] + b["n"]]:
            sent_at[item["event_id"]] = (b["sent_at"], item["payload"]["customer_id"])
    fact_lags, score_lags, score_times, missing = [], [], [], 0
    for eid, (t, customer) in sent_at.items():
        if eid not in committed:
            continue
        fact_lags.append(committed[eid] - t)
        scored = watcher.score_time(customer, committed[eid])
        if scored is None:
            missing += 1
            continue
        score_lags.append(scored - t)
        score_times.append(scored)
    last_fact = max(committed[eid] for eid in sent_at if eid in committed)
    last_score = max(score_times) if score_times else float("nan")
    return {
        "events": events,
        "customers": customers,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "accepted": accepted,
        "e2e_eps": len(score_lags) / (last_score - first_post) if score_lags else 0.0,
        "facts_eps": len(fact_lags) / (last_fact - first_post),
        "gateway_accept_eps": accepted / (last_answer - first_post),
        "lag_p50_s": perfkit.percentile(score_lags, 0.5),
        "lag_p99_s": perfkit.percentile(score_lags, 0.99),
        "lag_max_s": max(score_lags) if score_lags else float("nan"),
        "facts_lag_p50_s": perfkit.percentile(fact_lags, 0.5),
        "facts_lag_p99_s": perfkit.percentile(fact_lags, 0.99),
        "events_without_score_seen": missing,
        "rescore_queue": watcher.has_queue,
        "raw": raw,
        "events_per_transaction": per_transaction,
    }


def run(args) -> dict:
    log_dir = perfkit.log_dir_for("ingest_e2e")
    figures = asyncio.run(measure(args, log_dir))
    raw_eps = figures["raw"]["produce_consume_eps"]
    e2e = figures["e2e_eps"]
    rows = [
        perfkit.row(
            "end-to-end rate",
            e2e,
            baseline=raw_eps,
            unit="events/s",
            target=">= 10,000 and >= 25% of raw",
            met=e2e >= 10_000 and e2e >= 0.25 * raw_eps,
        ),
        perfkit.row("gateway acceptance rate", figures["gateway_accept_eps"], baseline=raw_eps, unit="events/s"),
        perfkit.row("facts committed (scoring inbox) rate", figures["facts_eps"], baseline=raw_eps, unit="events/s"),
        perfkit.row("lag post -> committed score p50", figures["lag_p50_s"] * 1000, unit="ms"),
        perfkit.row("lag post -> committed score p99", figures["lag_p99_s"] * 1000, unit="ms"),
        perfkit.row("lag post -> facts committed p99", figures["facts_lag_p99_s"] * 1000, unit="ms"),
    ]
    return perfkit.result("ingest_e2e", rows, figures=figures)


def add_arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--customers", type=int, default=0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", type=float, default=0, help="py-spy the gateway and scoring for this many seconds from the first post")


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
