"""A complaint's timeline: what happened, in order (internal entries for staff, customer entries for everyone)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_complaints.complaints.access import Actor
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
) -> TimelineEntry:
    entry = TimelineEntry(
        complaint_id=complaint.id, at=at, kind=kind, visibility=visibility, actor_id=actor.id if actor else None, body=body, data=data or {}
    )
    session.add(entry)
    return entry


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
