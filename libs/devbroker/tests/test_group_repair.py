"""The Tansu adapter: its join watchdog and the departed-leader repair (crm_devbroker.tansu, crm_devbroker.group_repair).

The broker case is built deterministically: a member joins an empty group, so the broker makes it the
leader of the generation being formed, and leaves before its SyncGroup. On Tansu a consumer then never
completes its join; after the repair it does.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient, CoordinationType

from crm_common.consumer import GroupJoinStalled, InboxConsumer, dev_broker_adapter
from crm_devbroker.group_repair import MEMBER_ID_REQUIRED, NO_ERROR, GroupRepair, release_departed_leader
from crm_devbroker.tansu import JoinWatchdog, TansuAdapter, TansuSettings


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_watchdog_raises_only_after_the_join_has_been_pending_longer_than_the_limit():
    clock = FakeClock()
    watchdog = JoinWatchdog(10.0, clock)
    watchdog.observe(joined=False)
    clock.now = 9.0
    watchdog.observe(joined=False)
    clock.now = 10.5
    with pytest.raises(GroupJoinStalled):
        watchdog.observe(joined=False)


def test_watchdog_forgets_a_pending_join_once_the_member_has_joined():
    clock = FakeClock()
    watchdog = JoinWatchdog(10.0, clock)
    watchdog.observe(joined=False)
    clock.now = 8.0
    watchdog.observe(joined=True)  # an ordinary rebalance that completed
    clock.now = 16.0
    watchdog.observe(joined=False)
    clock.now = 25.0
    watchdog.observe(joined=False)  # 9 s pending since 16.0: still fine


def test_watchdog_limit_zero_turns_it_off():
    clock = FakeClock()
    watchdog = JoinWatchdog(0, clock)
    watchdog.observe(joined=False)
    clock.now = 1e6
    watchdog.observe(joined=False)


def test_kafka_dev_broker_tansu_gives_consumers_the_adapter_and_empty_gives_none(kafka_settings):
    assert isinstance(dev_broker_adapter(kafka_settings.model_copy(update={"dev_broker": "tansu"})), TansuAdapter)
    assert dev_broker_adapter(kafka_settings.model_copy(update={"dev_broker": ""})) is None
    with pytest.raises(RuntimeError, match="no such development broker"):
        dev_broker_adapter(kafka_settings.model_copy(update={"dev_broker": "redpanda-someday"}))


def test_a_consumer_against_kafka_has_no_watchdog_and_no_first_join_limit(kafka_settings):
    class Handler:
        name = "h"
        topics = ("logistics.orders",)
        event_types = None

    consumer = InboxConsumer(None, kafka_settings.model_copy(update={"dev_broker": ""}), Handler(), None)
    assert consumer.dev_broker is None
    tansu = InboxConsumer(None, kafka_settings.model_copy(update={"dev_broker": "tansu"}), Handler(), None)
    assert tansu.dev_broker.first_join_timeout_s == TansuSettings().join_watchdog_s  # the run's setting: 10 s in tests


def test_the_watchdog_limit_zero_also_lifts_the_first_join_limit(kafka_settings):
    assert TansuAdapter(kafka_settings, TansuSettings(join_watchdog_s=0)).first_join_timeout_s is None


async def _leave_a_leader_behind(kafka_settings, group_id: str, topics: list[str]) -> str:
    """Join an empty group (becoming leader of the pending generation) and leave before syncing."""
    client = AIOKafkaClient(**kafka_settings.client_options(), client_id="departing")
    await client.bootstrap()
    try:
        coordinator_id = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
        member = GroupRepair(client, coordinator_id, group_id, topics, kafka_settings.consumer_session_timeout_ms)
        answer = await member.join("")
        assert answer.error_code == MEMBER_ID_REQUIRED
        answer = await member.join(answer.member_id)
        assert answer.error_code == NO_ERROR and answer.leader_id == answer.member_id
        await member.leave(answer.member_id)
        return answer.member_id
    finally:
        await client.close()


def _consumer(kafka_settings, group_id: str, topics: list[str]) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        **kafka_settings.client_options(),
        group_id=group_id,
        enable_auto_commit=False,
        session_timeout_ms=kafka_settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=kafka_settings.consumer_heartbeat_interval_ms,
    )


async def test_a_group_whose_pending_leader_left_joins_again_after_the_repair(kafka_settings):
    group_id = f"g-repair-{uuid.uuid4().hex[:8]}"
    topics = [kafka_settings.physical("logistics.orders")]
    departed = await _leave_a_leader_behind(kafka_settings, group_id, topics)

    stuck = _consumer(kafka_settings, group_id, topics)
    try:
        # What the repair is for: on Tansu this join never completes. If it does, the broker has been
        # fixed and the repair (and this test) can go.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stuck.start(), timeout=6)
    finally:
        await asyncio.shield(stuck.stop())

    assert await release_departed_leader(kafka_settings, group_id, topics) == departed

    healthy = _consumer(kafka_settings, group_id, topics)
    try:
        await asyncio.wait_for(healthy.start(), timeout=10)
        assert {tp.partition for tp in healthy.assignment()} == set(range(kafka_settings.topic_partitions))
    finally:
        await healthy.stop()


async def test_the_repair_does_nothing_to_a_healthy_group(kafka_settings):
    group_id = f"g-healthy-{uuid.uuid4().hex[:8]}"
    topics = [kafka_settings.physical("logistics.orders")]
    member = _consumer(kafka_settings, group_id, topics)
    try:
        await asyncio.wait_for(member.start(), timeout=10)
        assert await release_departed_leader(kafka_settings, group_id, topics) is None

        # The probe's join makes the live member rejoin once; it must end up with every partition again.
        async def owns_everything():
            await member.getmany(timeout_ms=200)
            return {tp.partition for tp in member.assignment()} == set(range(kafka_settings.topic_partitions))

        for _ in range(60):
            if await owns_everything():
                break
        assert await owns_everything()
    finally:
        await member.stop()
