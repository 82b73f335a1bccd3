"""Events out: each puts one event of crm_common.events.complaints in the outbox, in the caller's transaction,
keyed by the complaint's customer (one customer's events stay in order)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.context import current_correlation_id
from crm_common.events.complaints import (
    ComplaintAssigned,
    ComplaintClosed,
    ComplaintEscalated,
    ComplaintFiled,
    ComplaintReopened,
    ComplaintResolved,
    SurveyAnswered,
)
from crm_common.events.envelope import EventEnvelope, EventPayload, make_event
from crm_common.outbox import add_to_outbox
from crm_complaints import SERVICE_NAME
from crm_complaints.complaints.models import Complaint


def envelope(complaint: Complaint, event: EventPayload, now: dt.datetime) -> EventEnvelope:
    """The event as the outbox stores it, with the current correlation id: for callers that stage many at once (`stage`)."""
    return make_event(event, key=complaint.customer_id, producer=SERVICE_NAME, correlation_id=current_correlation_id(), occurred_at=now)


async def stage(session: AsyncSession, envelopes: Sequence[EventEnvelope]) -> None:
    """Put envelopes built by `envelope` in the outbox, in their order, with one statement."""
    await add_to_outbox(session, envelopes)


async def _publish(session: AsyncSession, complaint: Complaint, event: EventPayload, now: dt.datetime) -> None:
    await stage(session, [envelope(complaint, event, now)])


def filed_event(complaint: Complaint, *, order_ids: list[str], tracking_numbers: list[str], now: dt.datetime) -> ComplaintFiled:
    return ComplaintFiled(
        complaint_id=complaint.id,
        complaint_number=complaint.number,
        customer_id=complaint.customer_id,
        category=complaint.category,
        priority=complaint.priority,
        channel=complaint.channel,
        team=complaint.team_id,
        contact_id=complaint.contact_id,
        reporter_name=complaint.reporter_name,
        reporter_phone=complaint.reporter_phone,
        reporter_email=complaint.reporter_email,
        language=complaint.language,
        order_ids=order_ids,
        tracking_numbers=tracking_numbers,
        filed_at=now,
    )


async def filed(
    session: AsyncSession, complaint: Complaint, *, order_ids: list[str], tracking_numbers: list[str], now: dt.datetime
) -> None:
    await _publish(session, complaint, filed_event(complaint, order_ids=order_ids, tracking_numbers=tracking_numbers, now=now), now)


def assigned_event(complaint: Complaint, *, team_id: str, agent_id: str | None, reason: str | None, now: dt.datetime) -> ComplaintAssigned:
    return ComplaintAssigned(
        complaint_id=complaint.id,
        complaint_number=complaint.number,
        customer_id=complaint.customer_id,
        team=team_id,
        agent=agent_id,
        reason=reason or ("queued: no agent on shift" if agent_id is None else None),
        assigned_at=now,
    )


async def assigned(
    session: AsyncSession, complaint: Complaint, *, team_id: str, agent_id: str | None, reason: str | None, now: dt.datetime
) -> None:
    await _publish(session, complaint, assigned_event(complaint, team_id=team_id, agent_id=agent_id, reason=reason, now=now), now)


async def escalated(
    session: AsyncSession, complaint: Complaint, *, level: int, escalated_to: str, clock: str, reason: str, now: dt.datetime
) -> None:
    await _publish(
        session,
        complaint,
        ComplaintEscalated(
            complaint_id=complaint.id,
            complaint_number=complaint.number,
            customer_id=complaint.customer_id,
            level=level,
            escalated_to=escalated_to,
            clock=clock,
            reason=reason,
            escalated_at=now,
        ),
        now,
    )


async def resolved(
    session: AsyncSession,
    complaint: Complaint,
    *,
    outcome: str,
    compensation_amount: Decimal | None,
    within_sla: bool,
    survey_url: str,
    now: dt.datetime,
) -> None:
    await _publish(
        session,
        complaint,
        ComplaintResolved(
            complaint_id=complaint.id,
            complaint_number=complaint.number,
            customer_id=complaint.customer_id,
            outcome=outcome,
            compensation_amount=compensation_amount,
            within_sla=within_sla,
            survey_url=survey_url,
            contact_id=complaint.contact_id,
            resolved_at=now,
        ),
        now,
    )


async def reopened(session: AsyncSession, complaint: Complaint, *, reason: str | None, now: dt.datetime) -> None:
    await _publish(
        session,
        complaint,
        ComplaintReopened(
            complaint_id=complaint.id, complaint_number=complaint.number, customer_id=complaint.customer_id, reason=reason, reopened_at=now
        ),
        now,
    )


async def closed(session: AsyncSession, complaint: Complaint, *, now: dt.datetime) -> None:
    await _publish(
        session,
        complaint,
        ComplaintClosed(complaint_id=complaint.id, complaint_number=complaint.number, customer_id=complaint.customer_id, closed_at=now),
        now,
    )


async def survey_answered(
    session: AsyncSession, complaint: Complaint, *, score: int, comment: str | None, agent: str | None, now: dt.datetime
) -> None:
    await _publish(
        session,
        complaint,
        SurveyAnswered(
            complaint_id=complaint.id,
            customer_id=complaint.customer_id,
            score=score,
            comment=comment,
            team=complaint.team_id,
            agent=agent,
            answered_at=now,
        ),
        now,
    )
