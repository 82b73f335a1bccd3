"""The lifecycle of a filed complaint: assignment, replies and notes, status changes, resolution, reopening, closing,
merging duplicates and the customer's survey answer. Each use case works inside the caller's transaction and
raises a domain exception (crm_complaints.complaints.errors) that rolls it all back."""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import utcnow
from crm_complaints.complaints import messages, publish, routing
from crm_complaints.complaints.access import Actor, authorize
from crm_complaints.complaints.clocks import clock_from_row, clocks_of, record_first_response, store_clock, team_calendar, update_clocks
from crm_complaints.complaints.errors import (
    ComplaintClosed,
    ComplaintNotFound,
    ComplaintNotOpen,
    DifferentCustomers,
    InvalidComplaintInput,
    NotAllowed,
    NotResolved,
    SurveyAlreadyAnswered,
    TransitionNotAllowed,
    UseActionEndpoint,
    field_error,
)
from crm_complaints.complaints.intake import assign_to, choose_agent, get_or_create_team
from crm_complaints.complaints.lookup import get_complaint
from crm_complaints.complaints.models import Agent, Complaint, ComplaintReference
from crm_complaints.complaints.states import MANUAL_TARGETS, OPEN_STATES, STATES, check_reopen, check_transition
from crm_complaints.complaints.timeline import add_timeline
from crm_complaints.settings import ComplaintsSettings
from crm_complaints.survey import service as survey_links


async def _set_status(
    session: AsyncSession,
    complaint: Complaint,
    target: str,
    now: dt.datetime,
    settings: ComplaintsSettings,
    actor: Actor,
    reason: str | None = None,
    *,
    customer_replied: bool = False,
) -> None:
    current = complaint.status
    check_transition(current, target)
    if current == target:
        return
    if target == "waiting_on_customer":
        await update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.pause(cal, now))
    elif current == "waiting_on_customer" and target in OPEN_STATES:
        await update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.resume(now))
    complaint.status = target
    complaint.version += 1
    await add_timeline(
        session,
        complaint,
        "status_changed",
        at=now,
        actor=actor,
        visibility="customer",
        message=messages.status_changed(current, target, reason, customer_replied=customer_replied),
        data={"from": current, "to": target, **({"reason": reason} if reason else {})},
    )


async def assign(
    session: AsyncSession,
    complaint_id: str,
    *,
    team_id: str | None,
    agent_id: str | None,
    reason: str | None,
    actor: Actor | None,
    settings: ComplaintsSettings,
    now: dt.datetime | None = None,
) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    if complaint.status not in OPEN_STATES:
        raise TransitionNotAllowed(f"A {complaint.status} complaint cannot be assigned.", current_status=complaint.status)
    reassignment = complaint.agent_id is not None or (team_id is not None and team_id != complaint.team_id)
    if reassignment and not reason:
        raise InvalidComplaintInput(
            "A reassignment needs a reason.",
            title="Reason required",
            errors=[field_error("body", "reason", msg="required when reassigning", type_="missing")],
        )
    team = await get_or_create_team(session, team_id or complaint.team_id or routing.DEFAULT_TEAM, settings)
    if agent_id is not None:
        agent = await session.get(Agent, agent_id)
        if agent is None or not agent.active:
            raise InvalidComplaintInput(
                f"No active agent {agent_id!r}.",
                title="Unknown agent",
                errors=[field_error("body", "agent_id", msg="unknown or inactive agent", type_="not_found")],
            )
        if agent.team_id != team.id:
            raise InvalidComplaintInput(
                f"Agent {agent_id!r} belongs to team {agent.team_id!r}, not {team.id!r}.",
                title="Agent not in team",
                errors=[field_error("body", "agent_id", msg="agent is not in the team", type_="mismatch")],
            )
    else:
        agent_id = await choose_agent(session, team, now, complaint)
    await assign_to(session, complaint, team, agent_id, now=now, actor=actor, reason=reason if reassignment else None, settings=settings)
    complaint.version += 1
    return complaint


async def reply(
    session: AsyncSession,
    complaint_id: str,
    body: str,
    *,
    actor: Actor | None,
    settings: ComplaintsSettings,
    now: dt.datetime | None = None,
) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    if complaint.status == "closed":
        raise ComplaintClosed("Reopen the complaint before replying.", current_status=complaint.status)
    await add_timeline(session, complaint, "reply", at=now, actor=actor, visibility="customer", body=body)
    await record_first_response(session, complaint, now, settings)
    if complaint.status == "assigned":
        await _set_status(session, complaint, "in_progress", now, settings, actor)
    return complaint


async def note(session: AsyncSession, complaint_id: str, body: str, *, actor: Actor | None, now: dt.datetime | None = None) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id)
    actor = authorize(actor, complaint, "note")
    await add_timeline(session, complaint, "note", at=now, actor=actor, visibility="internal", body=body)
    return complaint


async def customer_message(
    session: AsyncSession,
    complaint_id: str,
    body: str,
    *,
    actor: Actor | None,
    settings: ComplaintsSettings,
    now: dt.datetime | None = None,
) -> Complaint:
    """The customer adds information. A complaint waiting on the customer goes back to work (clocks resume)."""
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    if actor is None or (actor.role == "customer" and actor.id != complaint.customer_id):
        raise ComplaintNotFound(complaint_id)
    if actor.role != "customer":
        actor = authorize(actor, complaint, "customer_message")  # staff recording what the customer said on the phone
    if complaint.status in ("resolved", "closed"):
        raise ComplaintNotOpen("Reopen the complaint to add to it.", current_status=complaint.status)
    await add_timeline(session, complaint, "customer_message", at=now, actor=actor, visibility="customer", body=body)
    if complaint.status == "waiting_on_customer":
        await _set_status(session, complaint, "in_progress", now, settings, actor, customer_replied=True)
    return complaint


async def change_status(
    session: AsyncSession,
    complaint_id: str,
    target: str,
    *,
    reason: str | None,
    actor: Actor | None,
    settings: ComplaintsSettings,
    now: dt.datetime | None = None,
) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    if target not in STATES:
        raise InvalidComplaintInput(
            f"{target!r} is not a status.",
            title="Unknown status",
            allowed=list(STATES),
            errors=[field_error("body", "status", msg="unknown status", type_="enum")],
        )
    if target not in MANUAL_TARGETS:
        check_transition(complaint.status, target)  # 409 when not allowed at all
        raise UseActionEndpoint(
            f"Move to {target!r} through its own action (assign, resolve, close, reopen).", current_status=complaint.status
        )
    await _set_status(session, complaint, target, now, settings, actor, reason)
    return complaint


async def resolve(
    session: AsyncSession,
    complaint_id: str,
    *,
    outcome: str,
    compensation_amount: Decimal | None,
    message: str | None,
    actor: Actor | None,
    settings: ComplaintsSettings,
    now: dt.datetime | None = None,
) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    check_transition(complaint.status, "resolved")
    if message:
        await add_timeline(session, complaint, "reply", at=now, actor=actor, visibility="customer", body=message)
    await record_first_response(session, complaint, now, settings)
    if complaint.status == "waiting_on_customer":
        await update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.resume(now))
    calendar = await team_calendar(session, complaint.team_id, settings)
    within = True
    for row in await clocks_of(session, complaint.id):
        clock = clock_from_row(row)
        if row.kind == "resolution":
            clock.stop(calendar, now)
            within = clock.within_target(calendar, now)
        store_clock(row, clock, calendar)
    previous = complaint.status
    complaint.status = "resolved"
    complaint.resolved_at = now
    complaint.outcome = outcome
    complaint.compensation_amount = compensation_amount
    complaint.resolved_by = actor.id if actor.role != "system" else complaint.agent_id
    complaint.resolution_within_sla = within
    complaint.survey_token = secrets.token_urlsafe(24)
    complaint.version += 1
    await add_timeline(
        session,
        complaint,
        "resolved",
        at=now,
        actor=actor,
        visibility="customer",
        body=outcome,
        data={
            "from": previous,
            "compensation_amount": str(compensation_amount) if compensation_amount is not None else None,
            "within_sla": within,
        },
    )
    await publish.resolved(
        session,
        complaint,
        outcome=outcome,
        compensation_amount=compensation_amount,
        within_sla=within,
        survey_url=survey_url(complaint, settings),
        now=now,
    )
    return complaint


def survey_url(complaint: Complaint, settings: ComplaintsSettings) -> str:
    return f"{settings.survey_base_url.rstrip('/')}/{complaint.id}?token={survey_links.link_token(complaint, settings)}"


async def reopen(
    session: AsyncSession,
    complaint_id: str,
    *,
    reason: str | None,
    actor: Actor | None,
    settings: ComplaintsSettings,
    now: dt.datetime | None = None,
    customer_id: str | None = None,
) -> Complaint:
    """Reopen within the window. Staff, or the customer who owns it (customer_id from the gateway)."""
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    if actor is not None and actor.role == "customer":
        if customer_id is None or customer_id != complaint.customer_id:
            raise NotAllowed("Customers can reopen only their own complaints.")
    else:
        actor = authorize(actor, complaint)
    check_reopen(complaint.status, complaint.resolved_at, now, settings.reopen_window_days)
    previous = complaint.status
    target = "in_progress"
    complaint.status = target
    complaint.closed_at = None
    complaint.reopen_count += 1
    complaint.version += 1
    await update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.restart(now))
    await add_timeline(
        session, complaint, "reopened", at=now, actor=actor, visibility="customer", body=reason, data={"from": previous, "to": target}
    )
    await publish.reopened(session, complaint, reason=reason, now=now)
    return complaint


async def close(
    session: AsyncSession,
    complaint_id: str,
    *,
    actor: Actor | None,
    settings: ComplaintsSettings,
    now: dt.datetime | None = None,
    reason: str | None = None,
) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    if complaint.status != "resolved":
        raise TransitionNotAllowed(
            f"Only a resolved complaint can be closed (this one is {complaint.status!r}).",
            current_status=complaint.status,
            allowed=["resolved"],
        )
    await _close(session, complaint, now, settings, actor, reason)
    return complaint


async def _close(
    session: AsyncSession,
    complaint: Complaint,
    now: dt.datetime,
    settings: ComplaintsSettings,
    actor: Actor,
    reason: str | None,
    message: messages.Message | None = None,
) -> None:
    """`reason`: the closer's words; `message`: the service's own text instead (a merge without a reason)."""
    previous = complaint.status
    check_transition(previous, "closed")
    await update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.stop(cal, now))
    complaint.status = "closed"
    complaint.closed_at = now
    complaint.version += 1
    await add_timeline(
        session, complaint, "closed", at=now, actor=actor, visibility="customer", body=reason, message=message, data={"from": previous}
    )
    await publish.closed(session, complaint, now=now)


async def merge(
    session: AsyncSession,
    source_id: str,
    target_id: str,
    *,
    reason: str | None,
    actor: Actor | None,
    settings: ComplaintsSettings,
    now: dt.datetime | None = None,
) -> Complaint:
    """Fold a duplicate (source) into the surviving complaint (target); the source is closed."""
    now = now or utcnow()
    if source_id == target_id:
        raise InvalidComplaintInput(
            title="Cannot merge into itself", errors=[field_error("body", "into", msg="same complaint", type_="value_error")]
        )
    source = await get_complaint(session, source_id, for_update=True)
    target = await get_complaint(session, target_id, for_update=True)
    actor = authorize(actor, source)
    authorize(actor, target)
    if source.customer_id != target.customer_id:
        raise DifferentCustomers("Only complaints of the same customer can be merged.")
    if source.status == "closed" or target.status == "closed":
        raise ComplaintClosed("Closed complaints cannot be merged.")
    existing = set(
        (
            await session.execute(
                select(ComplaintReference.kind, ComplaintReference.value).where(ComplaintReference.complaint_id == target.id)
            )
        ).all()
    )
    for kind, value in (
        await session.execute(select(ComplaintReference.kind, ComplaintReference.value).where(ComplaintReference.complaint_id == source.id))
    ).all():
        if (kind, value) not in existing:
            session.add(ComplaintReference(complaint_id=target.id, kind=kind, value=value))
    source.merged_into = target.id
    await add_timeline(
        session,
        target,
        "merged",
        at=now,
        actor=actor,
        visibility="customer",
        message=messages.Message("timeline.merged", {"number": source.number}),
        data={"merged": source.id, "reason": reason},
    )
    merged_into = None if reason else messages.Message("timeline.closed_merged_into", {"number": target.number})
    await _close(session, source, now, settings, actor, reason, merged_into)
    return target


async def answer_survey(
    session: AsyncSession,
    complaint_id: str,
    *,
    score: int,
    comment: str | None,
    token: str | None,
    actor: Actor | None,
    settings: ComplaintsSettings,
    now: dt.datetime | None = None,
) -> Complaint:
    """Staff recording a phone callback need no token; anyone else needs the signed link of this resolution."""
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    staff = actor is not None and actor.is_staff
    if not staff:
        survey_links.check_link_token(complaint, token, settings, now)  # InvalidSurveyLink, SurveyLinkExpired
    if complaint.status not in ("resolved", "closed") or complaint.resolved_at is None:
        raise NotResolved("The survey opens after the complaint is resolved.", current_status=complaint.status)
    if complaint.survey_answered_at is not None and complaint.survey_answered_at >= complaint.resolved_at:
        raise SurveyAlreadyAnswered("This resolution has already been rated.")
    complaint.survey_score = score
    complaint.survey_comment = comment
    complaint.survey_answered_at = now
    agent = complaint.resolved_by or complaint.agent_id
    await add_timeline(session, complaint, "survey", at=now, actor=actor, visibility="customer", body=comment, data={"score": score})
    await publish.survey_answered(session, complaint, score=score, comment=comment, agent=agent, now=now)
    return complaint
