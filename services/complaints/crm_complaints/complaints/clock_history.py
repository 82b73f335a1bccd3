"""One-off heal: rebuild the finished stretches of clocks stored before migration 0004 (`stretches` NULL).

Without its stretches a clock cannot say when a changed target was used up (see `SlaClock.history`). This
replays each such complaint's timeline through `SlaClock`: `filed` starts both clocks; a move to
`waiting_on_customer` pauses them and leaving it resumes them; a reply (or the resolution) stops the
first-response clock; `resolved` stops and `reopened` restarts the resolution clock; `closed` stops both; a
move to another team continues in that team's calendar. Calendars are the teams' current ones. A replay is
kept only when it reproduces the stored clock exactly (time counted, running since, stopped at); then the
deadline, breach and next escalation are recomputed from it for the clock's target. Anything else keeps
NULL and is reported.

Run once after `alembic upgrade` (any number of times is harmless):
`COMPLAINTS_DATABASE_URL=... crm-complaints rebuild-clock-history` (crm_complaints.cli)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from crm_common.db import Database, utcnow
from crm_complaints.complaints.clocks import clock_from_row, clocks_of, store_clock, team_calendar
from crm_complaints.complaints.models import Complaint, SlaClockRow, TimelineEntry
from crm_complaints.complaints.sla import BusinessCalendar, SlaClock
from crm_complaints.complaints.states import OPEN_STATES
from crm_complaints.settings import ComplaintsSettings


@dataclass
class RebuildReport:
    rebuilt: int = 0
    not_reproduced: list[int] = field(default_factory=list)  # clock ids left without history


def replay_timeline(entries: list[TimelineEntry], calendar_of) -> dict[str, SlaClock]:
    """The clocks as the service would have left them after these timeline entries (in order)."""
    clocks: dict[str, SlaClock] = {}
    team: str | None = None
    for entry in entries:
        at, data = entry.at, entry.data or {}
        if entry.kind == "filed":
            clocks = {kind: SlaClock.start(kind, 0, at) for kind in ("first_response", "resolution")}
        elif not clocks:
            continue
        elif entry.kind in ("assigned", "reassigned"):
            if team is not None and data.get("team") != team:
                for clock in clocks.values():
                    if clock.running:
                        clock.pause(calendar_of(team), at)
                        clock.resume(at)
            team = data.get("team")
        elif entry.kind == "status_changed":
            if data.get("to") == "waiting_on_customer":
                for clock in clocks.values():
                    clock.pause(calendar_of(team), at)
            elif data.get("from") == "waiting_on_customer" and data.get("to") in OPEN_STATES:
                for clock in clocks.values():
                    clock.resume(at)
        elif entry.kind == "reply":
            clocks["first_response"].stop(calendar_of(team), at)
        elif entry.kind == "resolved":
            clocks["first_response"].stop(calendar_of(team), at)
            if data.get("from") == "waiting_on_customer":
                for clock in clocks.values():
                    clock.resume(at)
            clocks["resolution"].stop(calendar_of(team), at)
        elif entry.kind == "reopened":
            clocks["resolution"].restart(at)
        elif entry.kind == "closed":
            for clock in clocks.values():
                clock.stop(calendar_of(team), at)
    return clocks


def _reproduces(replayed: SlaClock | None, stored: SlaClock) -> bool:
    return replayed is not None and (replayed.consumed, replayed.running_since, replayed.stopped_at) == (
        stored.consumed,
        stored.running_since,
        stored.stopped_at,
    )


async def rebuild_complaint(session, complaint_id: str, settings: ComplaintsSettings, now: dt.datetime, report: RebuildReport) -> None:
    complaint = await session.scalar(select(Complaint).where(Complaint.id == complaint_id).with_for_update())
    entries = (
        await session.scalars(
            select(TimelineEntry).where(TimelineEntry.complaint_id == complaint_id).order_by(TimelineEntry.at, TimelineEntry.id)
        )
    ).all()
    calendars: dict[str | None, BusinessCalendar] = {}
    for team_id in {complaint.team_id, *((e.data or {}).get("team") for e in entries)}:
        calendars[team_id] = await team_calendar(session, team_id, settings)
    replayed = replay_timeline(list(entries), calendars.__getitem__)
    current = calendars[complaint.team_id]
    for row in await clocks_of(session, complaint_id):
        if row.stretches is not None:
            continue
        clock = clock_from_row(row)
        if not _reproduces(replayed.get(row.kind), clock):
            report.not_reproduced.append(row.id)
            continue
        clock.history = replayed[row.kind].history
        clock.retarget(clock.target_minutes, current, now)
        store_clock(row, clock, current)
        report.rebuilt += 1


async def rebuild_stretches(db: Database, settings: ComplaintsSettings, now: dt.datetime | None = None) -> RebuildReport:
    now = now or utcnow()
    report = RebuildReport()
    async with db.sessions() as session:
        complaint_ids = (await session.scalars(select(SlaClockRow.complaint_id).where(SlaClockRow.stretches.is_(None)).distinct())).all()
    for complaint_id in complaint_ids:
        async with db.transaction() as session:
            await rebuild_complaint(session, complaint_id, settings, now, report)
    return report
