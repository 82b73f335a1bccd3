"""Periodic satisfaction surveys of key accounts (客户满意度调查), docs/account-management.md.

Once a quarter (Asia/Shanghai) the account manager asks each key account how satisfied it is: an overall score (1-5),
optionally the seeds' factors (on-time, damage, price, staff, complaint handling) and a comment. The survey is a
worklist task from the quarter's start, due by the end of its first month, until the quarter has an answer; the
answers feed the KPI `satisfaction` and the key-account monthly reports (with the answers of the survey campaigns,
campaigns.py) and, by SatisfactionSurveyAnswered, scoring's satisfaction. One answer per customer and quarter.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.events.customers import SatisfactionSurveyAnswered
from crm_common.outbox import emit
from crm_profile import SERVICE_NAME
from crm_profile.accounts import campaigns
from crm_profile.accounts.models import SatisfactionSurvey
from crm_profile.accounts.service import BUSINESS_ZONE, STAFF_ROLES, Actor, ActorRequired, Forbidden, WorkspaceError, period_bounds
from crm_profile.customers.models import MERGED, Customer

FACTORS = ("on_time", "damage", "price", "staff", "complaint_handling")
DUE_AFTER_DAYS = 30  # from the quarter's start: the survey is asked in the quarter's first month


class CustomerNotFound(WorkspaceError):
    pass


class AlreadySurveyed(WorkspaceError):
    pass


def quarter_label(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def survey_due(today: dt.date) -> dt.date:
    start, _ = period_bounds("quarter", today)
    return start + dt.timedelta(days=DUE_AFTER_DAYS)


async def surveyed_this_quarter(session: AsyncSession, customer_ids: list[str], today: dt.date) -> set[str]:
    if not customer_ids:
        return set()
    rows = await session.scalars(
        select(SatisfactionSurvey.customer_id).where(
            SatisfactionSurvey.customer_id.in_(customer_ids), SatisfactionSurvey.quarter == quarter_label(today)
        )
    )
    return set(rows.all())


async def record(
    session: AsyncSession,
    actor: Actor | None,
    customer_id: str,
    *,
    score: int,
    factors: dict[str, int],
    comment: str | None,
    answered_at: dt.datetime,
) -> SatisfactionSurvey:
    """The quarter's answer of the customer (the quarter holding `answered_at`); a second one for the quarter is refused."""
    if actor is None:
        raise ActorRequired()
    if actor.role not in STAFF_ROLES | {"account_manager"}:
        raise Forbidden("The account manager or staff record a satisfaction survey.")
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.status == MERGED or (actor.role == "account_manager" and customer.account_manager != actor.subject):
        raise CustomerNotFound(customer_id)
    quarter = quarter_label(answered_at.astimezone(BUSINESS_ZONE).date())
    survey = SatisfactionSurvey(
        id=str(uuid.uuid4()),
        customer_id=customer_id,
        quarter=quarter,
        score=score,
        factors=factors,
        comment=comment,
        account_manager=customer.account_manager,
        recorded_by=actor.subject,
        answered_at=answered_at,
    )
    if await session.scalar(
        select(SatisfactionSurvey.id).where(SatisfactionSurvey.customer_id == customer_id, SatisfactionSurvey.quarter == quarter)
    ):
        raise AlreadySurveyed(f"{customer_id} already answered the {quarter} survey")
    session.add(survey)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent answer for the same quarter won: the transaction rolls back
        raise AlreadySurveyed(f"{customer_id} already answered the {quarter} survey") from None
    await emit(
        session,
        SatisfactionSurveyAnswered(
            survey_id=survey.id, customer_id=customer_id, source="quarterly", score=score, factors=factors, answered_at=answered_at
        ),
        key=customer_id,
        producer=SERVICE_NAME,
    )
    return survey


async def list_for(session: AsyncSession, customer_id: str) -> list[SatisfactionSurvey]:
    rows = await session.scalars(
        select(SatisfactionSurvey).where(SatisfactionSurvey.customer_id == customer_id).order_by(SatisfactionSurvey.quarter.desc())
    )
    return list(rows.all())


async def scores_between(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> dict[str, list[int]]:
    """Per customer, the overall scores of the surveys answered in [start, end): the quarterly surveys and the answers
    to the survey campaigns (each contact's answer counts once)."""
    rows = await session.execute(
        select(SatisfactionSurvey.customer_id, SatisfactionSurvey.score).where(
            SatisfactionSurvey.answered_at >= start, SatisfactionSurvey.answered_at < end
        )
    )
    scores: dict[str, list[int]] = {}
    for customer_id, score in [*rows.all(), *await campaigns.campaign_scores_between(session, start, end)]:
        scores.setdefault(customer_id, []).append(score)
    return scores
