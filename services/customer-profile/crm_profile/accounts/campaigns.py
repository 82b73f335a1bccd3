"""Satisfaction survey campaigns (客户满意度调查), docs/account-management.md "Satisfaction survey campaigns".

An admin sends a campaign to a segment (class, tier, region, key accounts only): every contact of the segment's live
customers that is not erased gets its own link, signed, expiring and single use (crm_common.links, the mechanism of the
complaint survey), and SatisfactionSurveyInvited is staged per contact for notifications to send it in the contact's
language. The contact answers without signing in: the overall score and the campaign's factors (the seeds': on-time,
damage, price, staff, complaint handling), 1-5 each, and a comment. The answer is stored on the invitation and
SatisfactionSurveyAnswered is staged in the same transaction (scoring's satisfaction); the answers count in the KPI
`satisfaction` and the monthly reports with the quarterly surveys (surveys.scores_between).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common import links
from crm_common.db import utcnow
from crm_common.events.customers import SatisfactionSurveyAnswered, SatisfactionSurveyInvited
from crm_common.outbox import emit
from crm_profile import SERVICE_NAME
from crm_profile.accounts.models import AccountScore, SurveyCampaign, SurveyInvitation
from crm_profile.accounts.service import KEY_ACCOUNT_BAND, WorkspaceError
from crm_profile.customers.models import MERGED, Customer
from crm_profile.settings import ProfileSettings

LANGUAGES = ("zh-CN", "en")  # the page's languages; a contact in another one reads zh-CN
CAN_BE_SURVEYED = ("active", "dormant")  # customers of the segment that are asked (not prospects, lost, blacklisted)


class CampaignNotFound(WorkspaceError):
    pass


class EmptySegment(WorkspaceError):
    pass


class InvitationNotFound(WorkspaceError):
    pass


class AlreadyAnswered(WorkspaceError):
    pass


class UnaskedFactors(WorkspaceError):
    def __init__(self, factors: list[str], asked: list[str]):
        super().__init__(f"not asked in this campaign: {', '.join(factors)}")
        self.factors, self.asked = factors, asked


def _secret(settings: ProfileSettings) -> str:
    return settings.survey_secret.get_secret_value()


def link_url(invitation: SurveyInvitation, settings: ProfileSettings) -> str:
    token = links.sign(_secret(settings), invitation.id, invitation.nonce, expires_at=invitation.expires_at)
    return f"{settings.survey_base_url.rstrip('/')}/{invitation.id}?token={token}"


async def _segment_customers(session: AsyncSession, segment: dict) -> list[Customer]:
    query = (
        select(Customer)
        .outerjoin(AccountScore, AccountScore.customer_id == Customer.id)
        .where(Customer.merged_into.is_(None), Customer.status != MERGED, Customer.status.in_(CAN_BE_SURVEYED))
        .order_by(Customer.id)
    )
    if segment.get("abc_class"):
        query = query.where(AccountScore.abc_class.in_(segment["abc_class"]))
    if segment.get("tier"):
        query = query.where(AccountScore.tier.in_(segment["tier"]))
    if segment.get("region"):
        query = query.where(Customer.region.in_(segment["region"]))
    if segment.get("key_accounts_only"):
        query = query.where((AccountScore.abc_class == "A") | (Customer.size_band == KEY_ACCOUNT_BAND))
    return list((await session.scalars(query)).all())


async def create_campaign(
    session: AsyncSession, settings: ProfileSettings, *, name: str, segment: dict, factors: list[str], valid_days: int | None, by: str
) -> tuple[SurveyCampaign, int]:
    """The campaign, one invitation per contact of the segment and its SatisfactionSurveyInvited, in one transaction."""
    now = utcnow()
    customers = await _segment_customers(session, segment)
    contacts = [(customer, contact) for customer in customers for contact in customer.contacts if contact.erased_at is None]
    if not contacts:
        raise EmptySegment("no contact of a live customer in this segment")
    campaign = SurveyCampaign(
        id=str(uuid.uuid4()),
        name=name,
        segment=segment,
        factors=factors,
        valid_days=valid_days or settings.survey_valid_days,
        created_by=by,
        created_at=now,
    )
    session.add(campaign)
    expires_at = now + dt.timedelta(days=campaign.valid_days)
    for customer, contact in contacts:
        invitation = SurveyInvitation(
            id=str(uuid.uuid4()),
            campaign_id=campaign.id,
            customer_id=customer.id,
            contact_id=contact.id,
            language=contact.language if contact.language in LANGUAGES else LANGUAGES[0],
            nonce=secrets.token_hex(16),
            expires_at=expires_at,
        )
        session.add(invitation)
        await emit(
            session,
            SatisfactionSurveyInvited(
                customer_id=customer.id,
                contact_id=contact.id,
                campaign_id=campaign.id,
                invitation_id=invitation.id,
                campaign_name=name,
                language=invitation.language,
                survey_url=link_url(invitation, settings),
                expires_at=expires_at,
            ),
            key=customer.id,
            producer=SERVICE_NAME,
        )
    await session.flush()
    return campaign, len(contacts)


async def campaign_counts(session: AsyncSession, campaign_ids: list[str]) -> dict[str, tuple[int, int, float | None]]:
    """Per campaign: contacts invited, answers, the answers' average overall score."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(SurveyInvitation.campaign_id, func.count(), func.count(SurveyInvitation.answered_at), func.avg(SurveyInvitation.score))
        .where(SurveyInvitation.campaign_id.in_(campaign_ids))
        .group_by(SurveyInvitation.campaign_id)
    )
    return {cid: (invited, answered, None if avg is None else round(float(avg), 2)) for cid, invited, answered, avg in rows.all()}


async def list_campaigns(session: AsyncSession, limit: int = 100) -> list[SurveyCampaign]:
    return list((await session.scalars(select(SurveyCampaign).order_by(SurveyCampaign.created_at.desc()).limit(limit))).all())


async def get_campaign(session: AsyncSession, campaign_id: str) -> SurveyCampaign:
    campaign = await session.get(SurveyCampaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(campaign_id)
    return campaign


# --- the public page behind the link ------------------------------------------------------------------


async def open_link(session: AsyncSession, settings: ProfileSettings, invitation_id: str, token: str | None) -> SurveyInvitation:
    """The invitation a valid, unexpired token names (links.InvalidLink / LinkExpired otherwise; an unknown id is an
    invalid link too, so ids cannot be probed)."""
    invitation = await session.get(SurveyInvitation, invitation_id)
    if invitation is None:
        raise links.InvalidLink()
    links.check(_secret(settings), token, invitation.id, invitation.nonce, now=utcnow())
    return invitation


async def answer(
    session: AsyncSession,
    settings: ProfileSettings,
    invitation_id: str,
    token: str,
    *,
    score: int,
    factors: dict[str, int],
    comment: str | None,
) -> SurveyInvitation:
    """Store the answer once (single use) and stage SatisfactionSurveyAnswered."""
    invitation = await open_link(session, settings, invitation_id, token)
    if invitation.answered_at is not None:
        raise AlreadyAnswered("This survey link has been answered already.")
    campaign = await get_campaign(session, invitation.campaign_id)
    unasked = [factor for factor in factors if factor not in campaign.factors]
    if unasked:
        raise UnaskedFactors(unasked, campaign.factors)
    invitation.answered_at, invitation.score, invitation.factors, invitation.comment = utcnow(), score, factors, comment
    await session.flush()
    await emit(
        session,
        SatisfactionSurveyAnswered(
            survey_id=invitation.id,
            customer_id=invitation.customer_id,
            source="campaign",
            campaign_id=campaign.id,
            score=score,
            factors=factors,
            answered_at=invitation.answered_at,
        ),
        key=invitation.customer_id,
        producer=SERVICE_NAME,
    )
    return invitation


async def campaign_scores_between(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[tuple[str, int]]:
    """(customer, overall score) of the campaign answers given in [start, end)."""
    rows = await session.execute(
        select(SurveyInvitation.customer_id, SurveyInvitation.score).where(
            SurveyInvitation.answered_at >= start, SurveyInvitation.answered_at < end
        )
    )
    return [(customer_id, score) for customer_id, score in rows.all()]
