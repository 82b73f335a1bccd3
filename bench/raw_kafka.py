"""The broker's raw rate: aiokafka produce then consume, no processing (the baseline of the ingestion benchmarks).

    .venv/bin/python bench/raw_kafka.py [--quick] [--events 200000] [--size 400] [--partitions 6]

A private Tansu broker (crm_devbroker.broker.LocalBroker). The producer uses the platform publisher's settings
(acks=all, linger 5 ms, 256 KiB batches); the consumer reads the topic from the start with getmany() in batches
of 500 like InboxConsumer, and commits offsets after each batch, but does nothing else with the records.
The producer runs in a second process, as the TMS would. Figures: produce events/s, consume events/s, and the
combined produce+consume rate (events / (produce time + consume time)).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit  # noqa: E402

TOPIC = "bench.raw"


def sample_value(size: int, i: int) -> bytes:
    """An envelope-sized JSON document (the real OrderCreated envelope is ~450 bytes)."""
    base = {"event_id": f"{i:032x}", "type": "OrderCreated", "key": f"C{i % 5000:06d}", "payload": {}}
    pad = max(0, size - len(json.dumps(base)) - 12)
    base["payload"] = {"pad": "x" * pad}
    return json.dumps(base).encode()


async def produce(bootstrap: str, events: int, size: int, topic: str) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = []
        for i in range(events):
            futures.append(await producer.send(topic, sample_value(size, i), key=f"C{i % 5000:06d}".encode()))
        await producer.flush()
        for future in futures:
            await future
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def consume(bootstrap: str, events: int, topic: str, group: str) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        session_timeout_ms=10000,
        heartbeat_interval_ms=3000,
    )
    await consumer.start()
    try:
        seen = 0
        started = None
        deadline = time.monotonic() + 300
        while seen < events and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            for tp, records in batches.items():
                if started is None:
                    started = time.perf_counter()
                seen += len(records)
                await consumer.commit({tp: records[-1].offset + 1})
        if seen < events:
            raise RuntimeError(f"consumed only {seen}/{events}")
        return time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()


def producer_process(bootstrap: str, events: int, size: int, topic: str) -> float:
    code = (
        f"import asyncio, sys; sys.path.insert(0, {str(perfkit.BENCH)!r}); import raw_kafka; "
        f"print('SECONDS', asyncio.run(raw_kafka.produce({bootstrap!r}, {events:d}, {size:d}, {topic!r})))"
    )
    completed = subprocess.run([perfkit.PYTHON, "-c", code], capture_output=True, text=True, timeout=600)
    line = next((out for out in completed.stdout.splitlines() if out.startswith("SECONDS ")), None)
    if line is None:
        raise RuntimeError(f"producer failed: {completed.stdout}\n{completed.stderr}")
    return float(line.split()[1])


async def measure(bootstrap: str, events: int, size: int, partitions: int) -> dict:
    kafka = await perfkit.prepare_topics(bootstrap, partitions)
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"{TOPIC}.{os.getpid()}.{int(time.time())}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    del kafka
    produce_s = await asyncio.to_thread(producer_process, bootstrap, events, size, topic)
    consume_s = await consume(bootstrap, events, topic, f"raw-{topic}")
    return {
        "events": events,
        "size_bytes": size,
        "partitions": partitions,
        "produce_eps": events / produce_s,
        "consume_eps": events / consume_s,
        "produce_consume_eps": events / (produce_s + consume_s),
        "produce_s": produce_s,
        "consume_s": consume_s,
    }


def run(args) -> dict:
    events = args.events or (30_000 if args.quick else 200_000)
    log_dir = perfkit.log_dir_for("raw_kafka")
    with perfkit.local_broker(log_dir) as broker:
        figures = asyncio.run(measure(broker.bootstrap, events, args.size, args.partitions))
    rows = [
        perfkit.row("produce rate", figures["produce_eps"], unit="events/s"),
        perfkit.row("consume rate", figures["consume_eps"], unit="events/s"),
        perfkit.row("produce+consume rate", figures["produce_consume_eps"], unit="events/s"),
    ]
    return perfkit.result("raw_kafka", rows, figures=figures)


def add_arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--size", type=int, default=450)
    parser.add_argument("--partitions", type=int, default=6)


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
