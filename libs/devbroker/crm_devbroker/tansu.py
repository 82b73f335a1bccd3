"""The `tansu` development broker adapter (KAFKA_DEV_BROKER=tansu): what a consumer needs on Tansu and not on Kafka.

On Tansu, when the leader of a generation being formed leaves during the sync phase (a rolling restart), the
remaining members are answered with that generation and the departed leader forever (docs/reliability.md).
The adapter watches every join: one pending longer than KAFKA_DEV_BROKER_JOIN_WATCHDOG_S makes the consumer
leave, `crm_devbroker.group_repair` releases the departed leader, and the consumer joins again with a new member
id. And Tansu keeps a formed generation's assignment when its members join again unchanged: a consumer whose topics
appear in its metadata (after a broker restarted empty) joins again as a new member, or it keeps the empty assignment
its leader made while the topics were missing. crm_common.consumer finds this adapter through the entry point
`crm.dev_brokers: tansu`; production sets no KAFKA_DEV_BROKER and never loads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_common.consumer import GroupJoinStalled
from crm_common.settings import KafkaSettings
from crm_devbroker.group_repair import release_departed_leader

NAME = "tansu"


class TansuSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_DEV_BROKER_", extra="ignore")

    # a join pending this long is taken as stuck (60 s by default, 20 s under `make run`, 10 s in tests); 0: never
    join_watchdog_s: float = 60.0


class JoinWatchdog:
    """Notices a group join that never completes, so the consumer can leave and join again.

    An idle replica (more replicas than partitions) holds a completed generation with no partitions and is left alone.
    """

    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit_s = limit_s
        self.clock = clock
        self._rejoining_since: float | None = None

    def observe(self, joined: bool) -> None:
        """Call between polls; raises GroupJoinStalled once the join has been pending longer than the limit."""
        if joined or self.limit_s <= 0:
            self._rejoining_since = None
            return
        now = self.clock()
        if self._rejoining_since is None:
            self._rejoining_since = now
        elif now - self._rejoining_since > self.limit_s:
            self._rejoining_since = None
            raise GroupJoinStalled(f"group join pending for more than {self.limit_s:.0f}s")


class TansuAdapter:
    """crm_common.consumer.DevBrokerAdapter for Tansu."""

    def __init__(self, kafka: KafkaSettings, settings: TansuSettings | None = None):
        self.kafka = kafka
        self.join_limit_s = (settings or TansuSettings()).join_watchdog_s
        self.first_join_timeout_s = self.join_limit_s if self.join_limit_s > 0 else None
        # Tansu answers a known member's JoinGroup with unchanged metadata with the formed generation as it is, and
        # that generation's SyncGroup with its stored assignment, whatever the leader assigns now. After a broker
        # restarted empty the leader assigned nothing (its metadata had no topic yet); once the topics appear, only a
        # new member id starts a generation that takes the leader's new assignment.
        self.rejoin_when_topics_appear = True

    def join_watch(self) -> JoinWatchdog:
        return JoinWatchdog(self.join_limit_s)

    async def after_stalled_join(self, group_id: str, topics: list[str]) -> None:
        await release_departed_leader(self.kafka, group_id, topics)
