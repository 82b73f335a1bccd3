"""`crm-dlq`: inspect a dead-letter topic and replay its messages after a fix.

Replayed messages go back to their original topic with the header `dlq.replay`, which tells the
consumer's inbox to try an event again even though it was recorded as dead-lettered.
A consumer group per DLQ remembers what was replayed, so running the command twice replays nothing twice.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter

from aiokafka import AIOKafkaConsumer

from crm_common.bus import KafkaPublisher
from crm_common.consumer import REPLAY_HEADER
from crm_common.events.topics import dlq_topic
from crm_common.settings import KafkaSettings

REPLAYER_GROUP = "crm-dlq-replayer"


async def _drain(kafka: KafkaSettings, topic: str, group_id: str | None, idle_s: float):
    """Yield DLQ records until the topic stays idle for `idle_s`; commit after each batch when grouped."""
    consumer = AIOKafkaConsumer(
        kafka.physical(dlq_topic(topic)),
        **kafka.client_options(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=kafka.consumer_session_timeout_ms,
        heartbeat_interval_ms=kafka.consumer_heartbeat_interval_ms,
    )
    await consumer.start()
    try:
        idle_since = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - idle_since < idle_s:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            if not batches:
                continue
            idle_since = asyncio.get_running_loop().time()
            for records in batches.values():
                yield consumer, records
            if group_id:
                await consumer.commit()
    finally:
        await consumer.stop()


async def summarize(kafka: KafkaSettings, topic: str, idle_s: float = 2.0) -> dict:
    errors: Counter[str] = Counter()
    total = 0
    async for _consumer, records in _drain(kafka, topic, None, idle_s):
        for record in records:
            headers = dict(record.headers or ())
            errors[headers.get("dlq.error_type", b"?").decode()] += 1
            total += 1
    return {"topic": dlq_topic(topic), "messages": total, "by_error_type": dict(errors)}


async def replay(kafka: KafkaSettings, topic: str, *, group_id: str = REPLAYER_GROUP, idle_s: float = 2.0) -> int:
    publisher = KafkaPublisher(kafka, client_id="dlq-replayer")
    replayed = 0
    try:
        async for _consumer, records in _drain(kafka, topic, group_id, idle_s):
            futures = []
            for record in records:
                headers = dict(record.headers or ())
                original = headers.get("dlq.original_topic", topic.encode()).decode()
                key = record.key.decode(errors="replace") if record.key else ""
                futures.append(await publisher.send(original, key, record.value, [(REPLAY_HEADER, b"1")]))
            for future in futures:
                await future
            replayed += len(futures)
    finally:
        await publisher.stop()
    return replayed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crm-dlq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "replay"):
        command = sub.add_parser(name)
        command.add_argument("--topic", required=True, help="the original (logical) topic, e.g. logistics.orders")
        command.add_argument("--idle", type=float, default=2.0, help="stop after this many idle seconds")
    args = parser.parse_args(argv)
    kafka = KafkaSettings()
    if args.command == "list":
        print(json.dumps(asyncio.run(summarize(kafka, args.topic, args.idle)), indent=2))
    else:
        print(f"replayed {asyncio.run(replay(kafka, args.topic, idle_s=args.idle))} message(s) to {args.topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
