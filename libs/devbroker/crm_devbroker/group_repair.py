"""Release a consumer group that the development broker left waiting for a departed leader.

Why: Tansu (the broker of `make run` and the tests) picks the leader of a generation being formed
once, and a LeaveGroup during that phase removes the member but not its leadership. The remaining
members are then answered with the departed leader forever: their SyncGroup is refused with
REBALANCE_IN_PROGRESS and no partition is consumed again (a rolling restart triggers it; see
docs/reliability.md). Only the leader's SyncGroup completes a generation, and a LeaveGroup of a
*formed* generation's leader clears the leadership.

So the repair speaks for the departed leader once: it joins under the leader's member id, completes
the pending generation with an empty assignment, and leaves under that id. The next JoinGroup of a
live member makes that member the leader and the group forms normally.

On Apache Kafka the situation does not arise, and the repair is refused harmlessly (a JoinGroup with a
member id the coordinator did not issue is answered UNKNOWN_MEMBER_ID). It runs only under KAFKA_DEV_BROKER=tansu,
when the adapter's JoinWatchdog (crm_devbroker.tansu) has seen a join pending for longer than its limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.protocol.admin import DescribeGroupsRequest
from aiokafka.protocol.group import JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest

from crm_common.settings import KafkaSettings

log = logging.getLogger(__name__)

NO_ERROR = 0
MEMBER_ID_REQUIRED = 79
CONSUMER_PROTOCOL_TYPE = "consumer"


@dataclass(frozen=True)
class JoinAnswer:
    error_code: int
    generation_id: int
    member_id: str
    leader_id: str
    member_ids: tuple[str, ...]


class GroupRepair:
    """One repair conversation with a group's coordinator (raw JoinGroup / SyncGroup / LeaveGroup)."""

    def __init__(
        self,
        client: AIOKafkaClient,
        coordinator_id: int,
        group_id: str,
        topics: list[str],
        session_timeout_ms: int,
        assignor: type[AbstractPartitionAssignor] = RoundRobinPartitionAssignor,
    ):
        self.client = client
        self.coordinator_id = coordinator_id
        self.group_id = group_id
        self.session_timeout_ms = session_timeout_ms
        # The same protocol name as the members' (aiokafka's default assignor), or the broker refuses the join.
        self.protocols = [(assignor.name, assignor.metadata(set(topics)).encode())]

    async def join(self, member_id: str) -> JoinAnswer:
        request = JoinGroupRequest(
            self.group_id, self.session_timeout_ms, self.session_timeout_ms, member_id, None, CONSUMER_PROTOCOL_TYPE, self.protocols
        )
        response = await self.client.send(self.coordinator_id, request)
        log.debug("repair JoinGroup as %r: %s", member_id, response)
        return JoinAnswer(
            response.error_code, response.generation_id, response.member_id, response.leader_id, tuple(m[0] for m in response.members)
        )

    async def sync_empty(self, generation_id: int, member_id: str, member_ids: tuple[str, ...]) -> int:
        """SyncGroup as leader, every member assigned nothing: they rebalance again right after."""
        nothing = ConsumerProtocolMemberAssignment(0, [], b"").encode()
        assignments = [(member, nothing) for member in member_ids]
        response = await self.client.send(self.coordinator_id, SyncGroupRequest(self.group_id, generation_id, member_id, None, assignments))
        log.debug("repair SyncGroup as %r in generation %d: %s", member_id, generation_id, response)
        error_code: int = response.error_code
        return error_code

    async def leave(self, member_id: str) -> None:
        await self.client.send(self.coordinator_id, LeaveGroupRequest(self.group_id, member_id))

    async def describe(self) -> tuple[str, set[str]]:
        """The group's state and its members' ids, as the coordinator reports them."""
        response = await self.client.send(self.coordinator_id, DescribeGroupsRequest([self.group_id]))
        group = response.groups[0]
        return group[2], {member[0] for member in group[5]}

    async def departed_leader(self) -> str | None:
        """The leader the pending generation waits for, when that leader is no longer a member; else None."""
        state, _ = await self.describe()
        if state == "Stable":
            return None
        leader_id = await self.pending_leader()
        if leader_id is None:
            return None
        _, members = await self.describe()
        return None if leader_id in members else leader_id

    async def pending_leader(self) -> str | None:
        """Join as a probe to read who the broker names as leader, then leave. None when the broker refuses."""
        answer = await self.join(JoinGroupRequest.UNKNOWN_MEMBER_ID)
        if answer.error_code == MEMBER_ID_REQUIRED:
            answer = await self.join(answer.member_id)
        if answer.error_code != NO_ERROR:
            return None
        if answer.leader_id == answer.member_id:
            # The probe itself became leader (the group had none): completing and leaving clears it again.
            await self.complete_and_leave_as(answer.member_id)
            return None
        await self.leave(answer.member_id)
        return answer.leader_id or None

    async def complete_and_leave_as(self, leader_id: str, attempts: int = 3) -> bool:
        """Complete the pending generation as its leader (empty assignment) and leave under that id."""
        try:
            for _ in range(attempts):
                answer = await self.join(leader_id)
                if answer.error_code != NO_ERROR or answer.leader_id != leader_id:
                    return False
                if await self.sync_empty(answer.generation_id, leader_id, answer.member_ids) == NO_ERROR:
                    return True
                # another member joined meanwhile: join again for the new generation
            return False
        finally:
            await self.leave(leader_id)


async def release_departed_leader(kafka: KafkaSettings, group_id: str, topics: list[str]) -> str | None:
    """Run the repair for `group_id`; returns the leader id it released, or None when there was nothing to do."""
    client = AIOKafkaClient(**kafka.client_options(), client_id=f"{kafka.client_id_prefix}-group-repair")
    try:
        await client.bootstrap()
        coordinator_id = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
        repair = GroupRepair(client, coordinator_id, group_id, topics, kafka.consumer_session_timeout_ms)
        leader_id = await repair.departed_leader()
        if leader_id is None:
            return None
        released = await repair.complete_and_leave_as(leader_id)
        log.warning("consumer group %s: %s the departed leader %s", group_id, "released" if released else "could not release", leader_id)
        return leader_id if released else None
    finally:
        await client.close()
