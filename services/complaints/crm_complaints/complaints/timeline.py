"""A complaint's timeline: what happened, in order (internal entries for staff, customer entries for everyone)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_complaints.complaints.access import Actor
from crm_complaints.complaints.messages import Message
from crm_complaints.complaints.models import Complaint, TimelineEntry


async def add_timeline(
    session: AsyncSession,
    complaint: Complaint,
    kind: str,
    *,
    at: dt.datetime,
    visibility: str = "internal",
    actor: Actor | None = None,
    body: str | None = None,
    data: dict | None = None,
    message: Message | None = None,
) -> TimelineEntry:
    """`message`: a text this service writes (messages.py): its key and parameters are stored and its English is the
    body. `body` alone: someone's own words (a reply, a note, an outcome), shown as written."""
    entry = TimelineEntry(
        complaint_id=complaint.id,
        at=at,
        kind=kind,
        visibility=visibility,
        actor_id=actor.id if actor else None,
        body=message.english() if message is not None else body,
        data=data or {},
        message_key=message.key if message is not None else None,
        message_params=message.params if message is not None else None,
    )
    session.add(entry)
    return entry


async def routing_rule_of(session: AsyncSession, complaint_id: str, team_id: str) -> dict | None:
    """The rule record (routing.rule_record) that routed the complaint to `team_id`: the latest assignment to that team
    that kept one. None when the complaint came to the team by hand (an assignment without a rule)."""
    entries = await session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.complaint_id == complaint_id, TimelineEntry.kind.in_(("assigned", "reassigned")))
        .order_by(TimelineEntry.at.desc(), TimelineEntry.id.desc())
    )
    for entry in entries:
        data = entry.data or {}
        if data.get("team") == team_id:
            return data.get("rule")
    return None


async def timeline(session: AsyncSession, complaint_id: str, *, customer_view: bool) -> list[TimelineEntry]:
    query = select(TimelineEntry).where(TimelineEntry.complaint_id == complaint_id)
    if customer_view:
        query = query.where(TimelineEntry.visibility == "customer")
    return list((await session.scalars(query.order_by(TimelineEntry.at, TimelineEntry.id))).all())


async def timelines(session: AsyncSession, complaint_ids: list[str], *, customer_view: bool) -> dict[str, list[TimelineEntry]]:
    """timeline() for a page of complaints in one query."""
    out: dict[str, list[TimelineEntry]] = {cid: [] for cid in complaint_ids}
    if not complaint_ids:
        return out
    query = select(TimelineEntry).where(TimelineEntry.complaint_id.in_(set(complaint_ids)))
    if customer_view:
        query = query.where(TimelineEntry.visibility == "customer")
    for entry in (await session.scalars(query.order_by(TimelineEntry.at, TimelineEntry.id))).all():
        out[entry.complaint_id].append(entry)
    return out
