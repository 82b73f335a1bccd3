"""SLA clocks of complaints: stored rows to `SlaClock` and back (with the deadline and next escalation the
scheduler scans), in the calendar of the complaint's team; and the reprioritisation that retargets them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import utcnow
from crm_complaints.complaints import messages
from crm_complaints.complaints.access import SYSTEM
from crm_complaints.complaints.lookup import follow_merges
from crm_complaints.complaints.models import Complaint, SlaClockRow, Team
from crm_complaints.complaints.priority import compute_priority
from crm_complaints.complaints.sla import DEFAULT_TARGETS, BusinessCalendar, SlaClock, Stretch
from crm_complaints.complaints.states import OPEN_STATES
from crm_complaints.complaints.timeline import add_timeline
from crm_complaints.settings import ComplaintsSettings


def _micro(delta: dt.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def clock_from_row(row: SlaClockRow) -> SlaClock:
    """The stored clock as an `SlaClock` to count with."""
    return SlaClock(
        kind=row.kind,
        target_minutes=row.target_minutes,
        consumed=dt.timedelta(microseconds=int(row.consumed_us or 0)),
        running_since=row.running_since,
        paused=row.paused,
        stopped_at=row.stopped_at,
        restartable=row.kind == "resolution",
        breached_at=row.breached_at,
        history=None if row.stretches is None else tuple(Stretch.from_dict(stretch) for stretch in row.stretches),
    )


def store_clock(row: SlaClockRow, clock: SlaClock, calendar: BusinessCalendar) -> None:
    """Write the clock back, with the deadline and next escalation in `calendar` (what the scheduler scans)."""
    row.target_minutes = clock.target_minutes
    row.consumed_us = _micro(clock.consumed)
    row.running_since = clock.running_since
    row.paused = clock.paused
    row.stopped_at = clock.stopped_at
    row.breached_at = clock.breached_at
    row.stretches = None if clock.history is None else [stretch.to_dict() for stretch in clock.history]
    row.deadline_at = clock.deadline(calendar)
    row.next_escalation_at = clock.escalation_due(calendar, row.escalation_level + 1)


async def team_calendar(session: AsyncSession, team_id: str | None, settings: ComplaintsSettings) -> BusinessCalendar:
    team = await session.get(Team, team_id) if team_id else None
    if team is None:
        return BusinessCalendar(timezone=settings.default_timezone)
    return BusinessCalendar.from_dict(team.calendar)


async def clocks_of(session: AsyncSession, complaint_id: str) -> list[SlaClockRow]:
    return list(
        (await session.scalars(select(SlaClockRow).where(SlaClockRow.complaint_id == complaint_id).order_by(SlaClockRow.kind))).all()
    )


async def clocks_of_many(session: AsyncSession, complaint_ids: list[str]) -> dict[str, list[SlaClockRow]]:
    """clocks_of() for a page of complaints in one query."""
    out: dict[str, list[SlaClockRow]] = {cid: [] for cid in complaint_ids}
    if not complaint_ids:
        return out
    for row in (
        await session.scalars(
            select(SlaClockRow).where(SlaClockRow.complaint_id.in_(set(complaint_ids))).order_by(SlaClockRow.kind, SlaClockRow.id)
        )
    ).all():
        out[row.complaint_id].append(row)
    return out


async def rebase_clocks(
    session: AsyncSession, complaint: Complaint, now: dt.datetime, old_team: str | None, new_team: str | None, settings: ComplaintsSettings
) -> None:
    """Count time up to now in the old team's calendar, then continue in the new team's."""
    old_calendar = await team_calendar(session, old_team, settings)
    new_calendar = await team_calendar(session, new_team, settings)
    for row in await clocks_of(session, complaint.id):
        clock = clock_from_row(row)
        if clock.running:
            clock.pause(old_calendar, now)
            clock.resume(now)
        store_clock(row, clock, new_calendar)


async def update_clocks(session: AsyncSession, complaint: Complaint, now: dt.datetime, settings: ComplaintsSettings, action) -> None:
    """`action(row, clock, calendar)` on each clock of the complaint, then store it."""
    calendar = await team_calendar(session, complaint.team_id, settings)
    for row in await clocks_of(session, complaint.id):
        clock = clock_from_row(row)
        action(row, clock, calendar)
        store_clock(row, clock, calendar)


async def record_first_response(session: AsyncSession, complaint: Complaint, now: dt.datetime, settings: ComplaintsSettings) -> None:
    if complaint.first_response_at is not None:
        return
    complaint.first_response_at = now
    calendar = await team_calendar(session, complaint.team_id, settings)
    for row in await clocks_of(session, complaint.id):
        if row.kind == "first_response":
            clock = clock_from_row(row)
            clock.stop(calendar, now)
            complaint.first_response_within_sla = clock.within_target(calendar, now)
            store_clock(row, clock, calendar)


async def reprioritize_open(
    session: AsyncSession, customer_id: str, *, settings: ComplaintsSettings, now: dt.datetime | None = None
) -> list[Complaint]:
    """After a tier or credit change, raise the priority of the customer's open complaints where the rules now say so.

    Priorities only go up (a downgrade never loosens a promise already made). Running and paused clocks take
    the new targets, keeping the time already used; stopped clocks keep theirs.
    """
    now = now or utcnow()
    customer = await follow_merges(session, customer_id)
    if customer is None:
        return []
    raised: list[Complaint] = []
    open_complaints = (
        await session.scalars(
            select(Complaint)
            .where(Complaint.customer_id == customer.id, Complaint.status.in_(OPEN_STATES), Complaint.merged_into.is_(None))
            .with_for_update(key_share=True)
        )
    ).all()
    for complaint in open_complaints:
        new = compute_priority(complaint.category, complaint.description, complaint.claimed_amount, customer.tier, customer.credit_grade)
        if new >= complaint.priority:
            continue
        old = complaint.priority
        complaint.priority = new
        complaint.version += 1
        targets = dict(zip(("first_response", "resolution"), settings.sla_targets.get(new, DEFAULT_TARGETS[new])))
        calendar = await team_calendar(session, complaint.team_id, settings)
        for row in await clocks_of(session, complaint.id):
            clock = clock_from_row(row)
            if clock.stopped_at is None:
                clock.retarget(targets[row.kind], calendar, now)
                store_clock(row, clock, calendar)
        await add_timeline(
            session,
            complaint,
            "reprioritized",
            at=now,
            actor=SYSTEM,
            visibility="internal",
            message=messages.Message(
                "timeline.reprioritized", {"priority_from": old, "priority_to": new, "tier": customer.tier, "credit": customer.credit_grade}
            ),
            data={"from": old, "to": new},
        )
        raised.append(complaint)
    return raised
