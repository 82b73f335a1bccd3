"""The idle lag report never holds up the poll loop: a partition whose position cannot be known (its topic gone
from a broker that restarted empty) is skipped until the next report."""

import asyncio

from aiokafka import TopicPartition
from common_support import RecordingHandler

from crm_common.consumer import CONSUMER_LAG, InboxConsumer
from crm_devbroker.testing import CollectingDeadLetters


class ConsumerWithoutPosition:
    """Two assigned partitions: one with a position, one whose position() waits forever (as aiokafka's does while
    the partition has no valid position)."""

    def __init__(self, topic: str):
        self.known, self.unknown = TopicPartition(topic, 0), TopicPartition(topic, 1)

    def assignment(self):
        return {self.unknown, self.known}

    async def position(self, tp):
        if tp == self.unknown:
            await asyncio.Event().wait()
        return 7

    def highwater(self, tp):
        return 10


async def test_a_partition_without_a_position_does_not_hold_up_the_idle_lag_report(messaging_db, kafka_settings):
    consumer = InboxConsumer(messaging_db, kafka_settings, RecordingHandler(), CollectingDeadLetters(), group_id="g-idle-lag")
    fake = ConsumerWithoutPosition(kafka_settings.physical("logistics.orders"))
    await asyncio.wait_for(consumer._report_idle_lag(fake), timeout=5)
    lag = CONSUMER_LAG.labels(consumer.handler.name, "logistics.orders", "0")._value.get()
    assert lag == 3
