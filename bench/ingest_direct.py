"""Direct Kafka ingestion into scoring: the TMS publishes envelopes straight to logistics.orders / finance.payments,
the scoring service (uvicorn subprocess, its InboxConsumer) applies them to PostgreSQL.

    .venv/bin/python bench/ingest_direct.py [--quick] [--events 50000] [--customers 5000]

Figures: events/s from the first publish to the last committed inbox row (the facts; the scoring service
marks the touched customers there and rescores them apart), and to the moment its rescore queue is empty
(every score committed). Baseline (same run, same broker, same number of records): raw aiokafka consume rate with no
processing (bench/raw_kafka.py). Target: >= 50% of the raw consume rate.
(bench/scoring_bench.py, the scoring engineer's, measures the recompute and the BG/NBD fit, not this path.)
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_e2e  # noqa: E402
import perfkit  # noqa: E402
import raw_kafka  # noqa: E402


def encode_items(items: list[dict]) -> list[tuple[str, str, bytes]]:
    """(topic, key, value) of each TMS item as the envelope the gateway would have published."""
    import datetime as dt

    from crm_common.events import payload_model, topic_for
    from crm_common.events.envelope import encode_envelope, make_event

    out = []
    for item in items:
        model = payload_model(item["type"], 1)
        payload = model.model_validate(item["payload"])
        envelope = make_event(payload, key=payload.customer_id, producer="bench-tms", occurred_at=dt.datetime.fromisoformat(item["occurred_at"]),
                              event_id=uuid.UUID(item["event_id"]))
        out.append((topic_for(item["type"]), payload.customer_id, encode_envelope(envelope)))
    return out


PUBLISHER = """
import asyncio, pickle, sys, time
from aiokafka import AIOKafkaProducer
async def main(bootstrap, path):
    records = pickle.load(open(path, "rb"))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    started = time.time()
    futures = [await producer.send(topic, value, key=key.encode()) for topic, key, value in records]
    await producer.flush()
    for f in futures:
        await f
    await producer.stop()
    print("STARTED", started, "DONE", time.time())
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def measure(args, log_dir: Path) -> dict:
    import pickle

    events = args.events or (6_000 if args.quick else 50_000)
    customers = args.customers or (1_000 if args.quick else 5_000)
    records = encode_items(perfkit.tms_items(events, customers, seed=args.seed))
    with perfkit.local_broker(log_dir) as broker:
        await perfkit.prepare_topics(broker.bootstrap, args.partitions)
        raw = await raw_kafka.measure(broker.bootstrap, events, 450, args.partitions)
        print(f"[ingest_direct] raw baseline: consume {raw['consume_eps']:,.0f} events/s", flush=True)
        async with perfkit.fresh_databases("scoring") as urls:
            scoring = perfkit.Server("scoring", perfkit.APPS["scoring"], perfkit.service_env("scoring", urls["scoring"], broker.bootstrap), log_dir=log_dir)
            with perfkit.servers(scoring):
                dsn = perfkit.asyncpg_dsn(urls["scoring"])
                warm = encode_items(perfkit.tms_items(200, 50, seed=3, run="warm"))
                for chunk, name in ((warm, "warm"), (records, "main")):
                    path = log_dir / f"records-{name}.pickle"
                    path.write_bytes(pickle.dumps(chunk))
                    before, _ = await ingest_e2e.inbox_rows(dsn)
                    profile = perfkit.Profiler(scoring.process.pid, log_dir / "profile-scoring", args.profile) if args.profile and name == "main" else None
                    if profile:
                        profile.__enter__()
                    completed = subprocess.run([perfkit.PYTHON, "-c", PUBLISHER, broker.bootstrap, str(path)], capture_output=True, text=True, timeout=900)
                    if completed.returncode != 0:
                        raise RuntimeError(completed.stderr)
                    started = float(completed.stdout.split()[1])
                    await ingest_e2e.wait_for_inbox(dsn, before + len(chunk), stall_s=90)
                    if profile:
                        profile.__exit__(None, None, None)
                _, last = await ingest_e2e.inbox_rows(dsn)
                watcher = ingest_e2e.ScoreWatcher(dsn)  # then until every marked customer is rescored
                deadline = time.monotonic() + 600
                while await watcher.queue_length() > 0 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                scored = time.time()
    return {"events": events, "customers": customers, "eps": events / (last - started), "scored_eps": events / (scored - started),
            "rescore_queue": watcher.has_queue, "raw": raw}


def run(args) -> dict:
    figures = asyncio.run(measure(args, perfkit.log_dir_for("ingest_direct")))
    raw = figures["raw"]["consume_eps"]
    rows = [perfkit.row("direct Kafka -> scoring facts committed", figures["eps"], baseline=raw, unit="events/s", target=">= 50% of raw consume",
                        met=figures["eps"] >= 0.5 * raw),
            perfkit.row("direct Kafka -> every score committed", figures["scored_eps"], baseline=raw, unit="events/s")]
    return perfkit.result("ingest_direct", rows, figures=figures)


def add_arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--customers", type=int, default=0)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--profile", type=float, default=0, help="py-spy the scoring service for this many seconds of the run")


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
