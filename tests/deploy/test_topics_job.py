"""The topic-creation job (deploy/scripts/create_topics.py) against the real broker of the test session."""

from __future__ import annotations

import importlib.util
import uuid

from aiokafka.admin import AIOKafkaAdminClient

from crm_common.events.topics import ALL_TOPICS
from crm_common.settings import KafkaSettings
from deploy_support import DEPLOY


def load_job():
    spec = importlib.util.spec_from_file_location("crm_create_topics_job", DEPLOY / "scripts" / "create_topics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_retention_configs_differ_for_dead_letter_topics():
    job = load_job()
    assert job.topic_configs("crm.complaints", 30, 90)["retention.ms"] == str(30 * 24 * 3600 * 1000)
    assert job.topic_configs("crm.complaints.dlq", 30, 90)["retention.ms"] == str(90 * 24 * 3600 * 1000)


async def test_creates_every_topic_with_the_partition_count_and_is_idempotent(kafka_bootstrap):
    job = load_job()
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"job{uuid.uuid4().hex[:6]}.")
    first = await job.create_topics(kafka, partitions=6, replication_factor=1, wait_s=10)
    assert set(first) == {kafka.physical(t) for t in ALL_TOPICS}
    assert set(first.values()) == {"created"}
    second = await job.create_topics(kafka, partitions=6, replication_factor=1, wait_s=10)
    assert set(second.values()) == {"exists"}
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        described = await admin.describe_topics(list(first))
    finally:
        await admin.close()
    assert {d["topic"]: len(d["partitions"]) for d in described} == {name: 6 for name in first}
