"""Create the platform's Kafka topics (the one-shot `topics` job of compose and Kubernetes).

Run inside any service image: `crm-entrypoint topics` (or `python deploy/scripts/create_topics.py`).
Connection settings are the shared KAFKA_* variables (crm_common.settings.KafkaSettings), so the
same job works against the local Apache Kafka, Tansu, or a managed cluster with SASL/TLS.

Idempotent: existing topics are left alone (with --grow, topics with fewer partitions than asked
are grown; this moves keys to other partitions, so only do it with consumers drained).
Business topics keep events `--retention-days` (default 30); dead-letter topics keep them
`--dlq-retention-days` (default 90) so that an operator has time to replay them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import IncompatibleBrokerVersion, TopicAlreadyExistsError

from crm_common.events.topics import ALL_TOPICS, DLQ_SUFFIX
from crm_common.settings import KafkaSettings

DAY_MS = 24 * 3600 * 1000


def topic_configs(topic: str, retention_days: float, dlq_retention_days: float) -> dict[str, str]:
    days = dlq_retention_days if topic.endswith(DLQ_SUFFIX) else retention_days
    return {"retention.ms": str(int(days * DAY_MS)), "cleanup.policy": "delete"}


async def _connect(kafka: KafkaSettings, wait_s: float) -> AIOKafkaAdminClient:
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        admin = AIOKafkaAdminClient(**kafka.client_options(), client_id=f"{kafka.client_id_prefix}-topics-job")
        try:
            await admin.start()
            return admin
        except Exception as exc:  # broker not up yet
            await admin.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {kafka.bootstrap_servers} not reachable after {wait_s:.0f}s: {exc}") from exc
            print(f"waiting for Kafka at {kafka.bootstrap_servers}: {exc}", flush=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def create_topics(
    kafka: KafkaSettings,
    *,
    partitions: int,
    replication_factor: int,
    retention_days: float = 30,
    dlq_retention_days: float = 90,
    topic_config: bool = True,
    grow: bool = False,
    wait_s: float = 120,
    topics: tuple[str, ...] = ALL_TOPICS,
) -> dict[str, str]:
    """Returns {physical topic: "created" | "exists" | "grown"}."""
    admin = await _connect(kafka, wait_s)
    outcome: dict[str, str] = {}
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if kafka.physical(t) not in existing]
        new_topics = [
            NewTopic(
                kafka.physical(t),
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs=topic_configs(t, retention_days, dlq_retention_days) if topic_config else {},
            )
            for t in missing
        ]
        if new_topics:
            try:
                await admin.create_topics(new_topics)
            except TopicAlreadyExistsError:
                pass
        for t in topics:
            outcome[kafka.physical(t)] = "created" if t in missing else "exists"
        if grow:
            described = await admin.describe_topics([kafka.physical(t) for t in topics if t not in missing])
            small = {d["topic"]: len(d["partitions"]) for d in described if len(d["partitions"]) < partitions}
            if small:
                try:
                    await admin.create_partitions({name: NewPartitions(total_count=partitions) for name in small})
                except IncompatibleBrokerVersion as exc:
                    raise RuntimeError(f"this broker cannot add partitions ({exc}); recreate the topics instead") from exc
                outcome.update({name: "grown" for name in small})
    finally:
        await admin.close()
    return outcome


def main(argv: list[str] | None = None) -> int:
    defaults = KafkaSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=defaults.topic_partitions, help="default: KAFKA_TOPIC_PARTITIONS")
    parser.add_argument(
        "--replication-factor", type=int, default=defaults.topic_replication_factor, help="default: KAFKA_TOPIC_REPLICATION_FACTOR"
    )
    parser.add_argument("--retention-days", type=float, default=30)
    parser.add_argument("--dlq-retention-days", type=float, default=90)
    parser.add_argument("--no-topic-config", action="store_true", help="do not send retention configs (brokers that reject them)")
    parser.add_argument("--grow", action="store_true", help="grow existing topics to --partitions")
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for the broker")
    args = parser.parse_args(argv)
    outcome = asyncio.run(
        create_topics(
            defaults,
            partitions=args.partitions,
            replication_factor=args.replication_factor,
            retention_days=args.retention_days,
            dlq_retention_days=args.dlq_retention_days,
            topic_config=not args.no_topic_config,
            grow=args.grow,
            wait_s=args.wait,
        )
    )
    for name, what in sorted(outcome.items()):
        print(f"{what:8s} {name}", flush=True)
    print(f"{len(outcome)} topics ready on {defaults.bootstrap_servers} ({args.partitions} partitions)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
