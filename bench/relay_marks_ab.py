"""A/B of the relay's broker marks: an outbox drain on PostgreSQL with and without the relay_marks upsert.

    .venv/bin/python bench/relay_marks_ab.py [--rows 10000] [--rounds 16]

Since the outbox became the durable log, each relay pass also raises the per-partition marks of what the
broker acknowledged (one INSERT .. ON CONFLICT of at most topics x partitions rows, in the pass's mark
transaction). Alternating rounds, each on a fresh database and fresh topics of a private Tansu; prints the
rows/s of every round and the median per variant.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "libs" / "common" / "tests"))

import asyncpg  # noqa: E402
from common_support import order_event  # noqa: E402

import crm_common.consumer  # noqa: E402,F401  (the inbox table, part of the messaging schema)
import crm_common.outbox as ob  # noqa: E402
from crm_common.bus import KafkaPublisher, ensure_topics  # noqa: E402
from crm_common.db import Database  # noqa: E402
from crm_common.events.topics import ALL_TOPICS  # noqa: E402
from crm_common.settings import KafkaSettings  # noqa: E402
from crm_devbroker.broker import LocalBroker  # noqa: E402
from crm_devbroker.testing import postgres_admin_url  # noqa: E402


async def main(N: int, rounds: int):
    broker = LocalBroker().start()
    admin = await asyncpg.connect(postgres_admin_url())
    original = ob._marks_upsert
    results = {"with marks": [], "without": []}
    try:
        for round_ in range(rounds):
            variant = "with marks" if round_ % 2 == 0 else "without"
            name = f"crm_dlbench_{uuid.uuid4().hex[:8]}"
            await admin.execute(f'CREATE DATABASE "{name}"')
            db = Database(postgres_admin_url().rpartition("/")[0] + f"/{name}")
            async with db.engine.begin() as c:
                await c.run_sync(ob.messaging_metadata.create_all)
            ob._marks_upsert = original if variant == "with marks" else (lambda *a, **k: None)
            k = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_prefix=f"b{round_}.", topic_partitions=6)
            await ensure_topics(k, ALL_TOPICS)
            async with db.transaction() as s:
                await ob.add_to_outbox(s, [order_event(f"o{i}", customer_id=f"c{i % 500}") for i in range(N)])
            p = KafkaPublisher(k, client_id="bench")
            relay = ob.OutboxRelay(db, p, service="bench")
            await relay.check_broker()
            t = time.perf_counter()
            await relay.drain(timeout_s=300)
            results[variant].append(N / (time.perf_counter() - t))
            await p.stop()
            await db.dispose()
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
        broker.stop()
    for variant, rates in results.items():
        print(f"{variant:<11} median {statistics.median(rates):>7.0f} rows/s   rounds: " + ", ".join(f"{r:.0f}" for r in rates))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.rounds))
