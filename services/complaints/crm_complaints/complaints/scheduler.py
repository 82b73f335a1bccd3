"""SLA scheduler: scans stored deadlines and escalates, exactly once per clock and level, across replicas.

Each clock row stores `next_escalation_at` (when its next level falls due, computed from the team's
business calendar) and `escalation_level`. A scan picks due rows and raises each by one level with
a conditional UPDATE ... WHERE escalation_level = <the level it read>; only the replica whose UPDATE
matched emits ComplaintEscalated (in the same transaction, through the outbox). A replica that lost
the race sees rowcount 0 and moves on. Restarts lose nothing: the deadlines are in the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import select, update

from crm_common.db import Database, utcnow
from crm_complaints.complaints import messages, publish, routing
from crm_complaints.complaints.access import SYSTEM
from crm_complaints.complaints.clocks import clock_from_row, team_calendar
from crm_complaints.complaints.intake import assign_to, choose_agent
from crm_complaints.complaints.models import Complaint, SlaClockRow, Team
from crm_complaints.complaints.sla import ESCALATION_TARGETS
from crm_complaints.complaints.timeline import add_timeline, routing_rule_of
from crm_complaints.settings import ComplaintsSettings

log = logging.getLogger(__name__)
MAX_LEVEL = 3


class SlaScheduler:
    def __init__(
        self,
        db: Database,
        settings: ComplaintsSettings,
        *,
        on_commit: Callable[[], None] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ):
        self.db = db
        self.settings = settings
        self.on_commit = on_commit
        self.clock = clock
        self._stopping = False
        self._wake = asyncio.Event()
        self.lost_races = 0  # conditional updates that matched nothing: another replica got there first

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def due_clock_ids(self, now: dt.datetime) -> list[int]:
        async with self.db.sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(SlaClockRow.id)
                        .where(
                            SlaClockRow.next_escalation_at <= now,
                            SlaClockRow.running_since.is_not(None),
                            SlaClockRow.escalation_level < MAX_LEVEL,
                        )
                        .order_by(SlaClockRow.next_escalation_at, SlaClockRow.id)
                        .limit(self.settings.scheduler_batch_size)
                    )
                ).all()
            )

    async def scan_once(self, now: dt.datetime | None = None) -> int:
        """One pass over due deadlines; returns how many escalations this replica emitted."""
        now = now or self.clock()
        emitted = 0
        for clock_id in await self.due_clock_ids(now):
            try:
                emitted += await self.escalate_clock(clock_id, now)
            except Exception:  # one bad row must not stop the others
                log.exception("escalation of clock %s failed", clock_id)
        if emitted and self.on_commit is not None:
            self.on_commit()
        await self.assign_queued(now)
        return emitted

    async def escalate_clock(self, clock_id: int, now: dt.datetime) -> int:
        emitted = 0
        async with self.db.transaction() as session:
            row = await session.get(SlaClockRow, clock_id)
            if row is None:
                return 0
            complaint = await session.get(Complaint, row.complaint_id)
            team = await session.get(Team, complaint.team_id) if complaint.team_id else None
            calendar = await team_calendar(session, complaint.team_id, self.settings)
            clock = clock_from_row(row)
            level = row.escalation_level
            while level < MAX_LEVEL:
                due = clock.escalation_due(calendar, level + 1)
                if due is None or due > now:
                    break
                new_level = level + 1
                following = clock.escalation_due(calendar, new_level + 1)
                values = {"escalation_level": new_level, "next_escalation_at": following}
                if new_level >= 2 and row.breached_at is None:
                    values["breached_at"] = clock.deadline(calendar)
                result = await session.execute(
                    update(SlaClockRow)
                    .where(SlaClockRow.id == clock_id, SlaClockRow.escalation_level == level)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:
                    self.lost_races += 1
                    return emitted  # another replica escalated this clock: its transaction owns the events
                escalated_to = self._recipient(new_level, team)
                reason = "near_breach" if new_level == 1 else "breach"
                await publish.escalated(
                    session, complaint, level=new_level, escalated_to=escalated_to, clock=row.kind, reason=reason, now=now
                )
                await add_timeline(
                    session,
                    complaint,
                    "escalated",
                    at=now,
                    actor=SYSTEM,
                    visibility="internal",
                    message=messages.Message(f"timeline.escalated_{reason}", {"clock": row.kind, "to": escalated_to, "level": new_level}),
                    data={"level": new_level, "clock": row.kind, "reason": reason, "to": escalated_to, "due_at": due.isoformat()},
                )
                emitted += 1
                level = new_level
            if level == row.escalation_level and emitted == 0:
                # stale schedule (calendar or clock changed): store the right next time
                await session.execute(
                    update(SlaClockRow)
                    .where(SlaClockRow.id == clock_id, SlaClockRow.escalation_level == level)
                    .values(next_escalation_at=clock.escalation_due(calendar, level + 1))
                    .execution_options(synchronize_session=False)
                )
        return emitted

    def _recipient(self, level: int, team: Team | None) -> str:
        team_id = team.id if team is not None else routing.DEFAULT_TEAM
        if level == 1:
            return (team.team_lead if team is not None else None) or f"{team_id}:{ESCALATION_TARGETS[1]}"
        if level == 2:
            return (team.manager if team is not None else None) or f"{team_id}:{ESCALATION_TARGETS[2]}"
        return self.settings.head_of_service

    async def assign_queued(self, now: dt.datetime) -> int:
        """Complaints waiting in a team queue get an agent as soon as one is on shift (highest priority first)."""
        assigned = 0
        async with self.db.sessions() as session:
            queued = (
                await session.execute(
                    select(Complaint.id, Complaint.team_id)
                    .where(Complaint.status == "new", Complaint.agent_id.is_(None), Complaint.team_id.is_not(None))
                    .order_by(Complaint.priority, Complaint.filed_at)
                    .limit(self.settings.scheduler_batch_size)
                )
            ).all()
        for complaint_id, team_id in queued:
            async with self.db.transaction() as session:
                complaint = await session.scalar(select(Complaint).where(Complaint.id == complaint_id).with_for_update())
                if complaint is None or complaint.status != "new" or complaint.agent_id is not None:
                    continue
                team = await session.get(Team, team_id)
                agent_id = await choose_agent(session, team, now, complaint)
                if agent_id is None:
                    continue
                guarded = await session.execute(
                    update(Complaint)
                    .where(Complaint.id == complaint_id, Complaint.agent_id.is_(None), Complaint.version == complaint.version)
                    .values(version=complaint.version + 1)
                    .execution_options(synchronize_session=False)
                )
                if guarded.rowcount != 1:
                    continue
                await session.refresh(complaint)
                rule = await routing_rule_of(session, complaint.id, team.id)  # the rule that queued it here, as the filing recorded it
                await assign_to(
                    session,
                    complaint,
                    team,
                    agent_id,
                    now=now,
                    actor=SYSTEM,
                    reason=None,
                    settings=self.settings,
                    rule=rule,
                    by_scheduler=True,
                )
                assigned += 1
        if assigned and self.on_commit is not None:
            self.on_commit()
        return assigned

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.scan_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SLA scan failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.scheduler_interval_s)
            except TimeoutError:
                pass
