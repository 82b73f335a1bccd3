"""Direct Kafka ingestion into scoring: the TMS publishes envelopes straight to logistics.orders / finance.payments,
the scoring service (uvicorn subprocess, its InboxConsumer) applies them to PostgreSQL.

    .venv/bin/python bench/ingest_direct.py [--quick] [--events 50000] [--customers 5000]

Figures: events/s from the first publish to the last committed inbox row (the facts; the scoring service
marks the touched customers there and rescores them apart), and to the moment its rescore queue is empty
(every score committed). Baseline (same run, same broker, same number of records): raw aiokafka consume rate with no
processing (bench/raw_kafka.py). Target: >= 50% of the raw consume rate.

Ceilings (same records, in this process, before the service starts, no Kafka): what the consumer's own Python
path can reach at best on this machine, as a share of the raw consume rate.
  * decode only: `InboxProcessor.process` with the database step left out (envelope + payload validation, the
    event-type filter), i.e. the per-event Python cost no ingestion can avoid;
  * decode + inbox claim: the real `InboxProcessor` on a fresh PostgreSQL database with a handler that does nothing
    (the idempotency guarantee alone);
  * decode + claim + facts: the real `InboxProcessor` with the scoring service's own handler (facts upserted,
    customers marked for rescoring), no rescoring.
Records are grouped per (topic, partition) with Kafka's default partitioner and processed in batches of the
consumer's batch size, as the service's InboxConsumer would see them with a backlog.
(bench/scoring_bench.py, the scoring engineer's, measures the recompute and the BG/NBD fit, not this path.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections import defaultdict
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
        envelope = make_event(
            payload,
            key=payload.customer_id,
            producer="bench-tms",
            occurred_at=dt.datetime.fromisoformat(item["occurred_at"]),
            event_id=uuid.UUID(item["event_id"]),
        )
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


def consumer_batches(records: list[tuple[str, str, bytes]], partitions: int, batch_size: int) -> list[list]:
    """The records as the InboxConsumer gets them: Deliveries of one (topic, partition), in offset order, in batches."""
    from aiokafka.partitioner import DefaultPartitioner

    from crm_common.consumer import Delivery

    partitioner = DefaultPartitioner()
    all_partitions = list(range(partitions))
    per_partition: dict[tuple[str, int], list] = defaultdict(list)
    for topic, key, value in records:
        partition = partitioner(key.encode(), all_partitions, all_partitions)
        deliveries = per_partition[(topic, partition)]
        deliveries.append(Delivery(topic, partition, len(deliveries), key.encode(), value))
    return [
        deliveries[start : start + batch_size] for deliveries in per_partition.values() for start in range(0, len(deliveries), batch_size)
    ]


class _NoopHandler:
    """The inbox claim alone: every event type of the scoring handler, nothing applied."""

    name = "ceiling-claim"
    topics = ()

    def __init__(self, event_types):
        self.event_types = event_types

    async def handle_batch(self, session, events) -> None:
        return None


async def _rate(processor, batches: list[list]) -> float:
    events = sum(len(batch) for batch in batches)
    started = time.perf_counter()
    for batch in batches:
        await processor.process(batch)
    return events / (time.perf_counter() - started)


async def ceilings(records: list[tuple[str, str, bytes]], partitions: int, batch_size: int = 0) -> dict:
    """Events/s of the consumer's Python path without Kafka: decode only, + inbox claim, + the scoring facts."""
    from crm_common.consumer import InboxProcessor
    from crm_common.db import Database
    from crm_devbroker.testing import CollectingDeadLetters
    from crm_scoring.scoring.handlers import ScoringHandler
    from crm_scoring.settings import ScoringSettings

    class DecodeOnly(InboxProcessor):
        async def _apply(self, events) -> None:  # the database step left out
            return None

    settings = ScoringSettings()
    batch_size = batch_size or settings.consumer_batch_size
    batches = consumer_batches(records, partitions, batch_size)
    scoring = ScoringHandler(settings)
    dead_letters = CollectingDeadLetters()
    figures = {"batch_size": batch_size, "batches": len(batches)}
    figures["decode_eps"] = max([await _rate(DecodeOnly(None, scoring, dead_letters), batches) for _ in range(3)])
    name, url = await perfkit.create_database("ceiling")
    try:
        await perfkit.migrate("scoring", url)
        db = Database(url, pre_ping=settings.db_pool_pre_ping)
        try:
            figures["claim_eps"] = await _rate(InboxProcessor(db, _NoopHandler(scoring.event_types), dead_letters), batches)
            figures["facts_eps"] = await _rate(InboxProcessor(db, scoring, dead_letters), batches)
        finally:
            await db.dispose()
    finally:
        await perfkit.drop_database(name)
    if dead_letters.sent:
        raise RuntimeError(f"{len(dead_letters.sent)} records dead-lettered in the ceiling runs")
    return figures


async def measure(args, log_dir: Path) -> dict:
    import pickle

    events = args.events or (6_000 if args.quick else 50_000)
    customers = args.customers or (1_000 if args.quick else 5_000)
    records = encode_items(perfkit.tms_items(events, customers, seed=args.seed))
    with perfkit.local_broker(log_dir) as broker:
        await perfkit.prepare_topics(broker.bootstrap, args.partitions)
        raw = await raw_kafka.measure(broker.bootstrap, events, 450, args.partitions)
        print(f"[ingest_direct] raw baseline: consume {raw['consume_eps']:,.0f} events/s", flush=True)
        ceiling = await ceilings(records, args.partitions, args.batch_size)
        for label, figure in (
            ("decode only", "decode_eps"),
            ("decode + inbox claim", "claim_eps"),
            ("decode + claim + facts", "facts_eps"),
        ):
            print(
                f"[ingest_direct] ceiling, {label}: {ceiling[figure]:,.0f} events/s = {ceiling[figure] / raw['consume_eps']:.2f} of raw "
                "consume",
                flush=True,
            )
        if args.ceilings_only:
            return {"events": events, "customers": customers, "raw": raw, "ceiling": ceiling}
        async with perfkit.fresh_databases("scoring") as urls:
            scoring = perfkit.Server(
                "scoring", perfkit.APPS["scoring"], perfkit.service_env("scoring", urls["scoring"], broker.bootstrap), log_dir=log_dir
            )
            with perfkit.servers(scoring):
                dsn = perfkit.asyncpg_dsn(urls["scoring"])
                warm = encode_items(perfkit.tms_items(200, 50, seed=3, run="warm"))
                for chunk, name in ((warm, "warm"), (records, "main")):
                    path = log_dir / f"records-{name}.pickle"
                    path.write_bytes(pickle.dumps(chunk))
                    before, _ = await ingest_e2e.inbox_rows(dsn)
                    profile = (
                        perfkit.Profiler(scoring.process.pid, log_dir / "profile-scoring", args.profile)
                        if args.profile and name == "main"
                        else None
                    )
                    if profile:
                        profile.__enter__()
                    completed = subprocess.run(
                        [perfkit.PYTHON, "-c", PUBLISHER, broker.bootstrap, str(path)], capture_output=True, text=True, timeout=900
                    )
                    if completed.returncode != 0:
                        raise RuntimeError(completed.stderr)
                    started = float(completed.stdout.split()[1])
                    await ingest_e2e.wait_for_inbox(dsn, before + len(chunk), stall_s=90)
                    if profile:
                        profile.__exit__(None, None, None)
                _, last = await ingest_e2e.inbox_rows(dsn)
                per_transaction = await ingest_e2e.events_per_transaction(dsn, since=started)
                print(
                    f"[ingest_direct] scoring consumer: {per_transaction:,.0f} events per transaction (batch size {ceiling['batch_size']})",
                    flush=True,
                )
                watcher = ingest_e2e.ScoreWatcher(dsn)  # then until every marked customer is rescored
                deadline = time.monotonic() + 600
                while await watcher.queue_length() > 0 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                scored = time.time()
    return {
        "events": events,
        "customers": customers,
        "eps": events / (last - started),
        "scored_eps": events / (scored - started),
        "events_per_transaction": per_transaction,
        "rescore_queue": watcher.has_queue,
        "raw": raw,
        "ceiling": ceiling,
    }


def run(args) -> dict:
    figures = asyncio.run(measure(args, perfkit.log_dir_for("ingest_direct")))
    raw = figures["raw"]["consume_eps"]
    ceiling_rows = [
        perfkit.row("ceiling: decode only (no Kafka, no database)", figures["ceiling"]["decode_eps"], baseline=raw, unit="events/s"),
        perfkit.row("ceiling: decode + inbox claim (no handler)", figures["ceiling"]["claim_eps"], baseline=raw, unit="events/s"),
        perfkit.row("ceiling: decode + claim + scoring facts (no Kafka)", figures["ceiling"]["facts_eps"], baseline=raw, unit="events/s"),
    ]
    if "eps" not in figures:
        return perfkit.result("ingest_direct", ceiling_rows, figures=figures)
    rows = [
        perfkit.row(
            "direct Kafka -> scoring facts committed",
            figures["eps"],
            baseline=raw,
            unit="events/s",
            target=">= 50% of raw consume",
            met=figures["eps"] >= 0.5 * raw,
        ),
        perfkit.row("direct Kafka -> every score committed", figures["scored_eps"], baseline=raw, unit="events/s"),
        *ceiling_rows,
    ]
    return perfkit.result("ingest_direct", rows, figures=figures)


def add_arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--customers", type=int, default=0)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--batch-size", type=int, default=0, help="batch of the ceiling runs (default: the scoring consumer's batch size)")
    parser.add_argument("--ceilings-only", action="store_true", help="the raw baseline and the ceilings, not the service")
    parser.add_argument("--profile", type=float, default=0, help="py-spy the scoring service for this many seconds of the run")


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
