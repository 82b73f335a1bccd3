"""Satisfaction survey campaigns: POST/GET /account-manager/survey-campaigns (admin sends; staff and account managers
read), and the public page's resource GET/POST /satisfaction-survey-links/{invitation_id} (no sign-in: the link's
signed token is the key; the gateway forwards it without an identity)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from crm_common import links
from crm_common.deps import RuntimeDep, SessionDep
from crm_common.problems import Problem, ProblemMapping
from crm_profile.accounts import campaigns, service
from crm_profile.accounts.api import Actor
from crm_profile.accounts.models import SurveyCampaign
from crm_profile.accounts.schemas import CampaignIn, CampaignOut, SurveyLinkAnsweredOut, SurveyLinkAnswerIn, SurveyLinkPage

router = APIRouter(tags=["satisfaction survey campaigns"])
InvitationId = Annotated[str, Path(max_length=36, pattern=r"^[^\x00-\x1f\x7f]*$")]
Token = Annotated[str, Query(min_length=1, max_length=200)]


async def _out(session, rows: list[SurveyCampaign]) -> list[CampaignOut]:
    counts = await campaigns.campaign_counts(session, [row.id for row in rows])
    return [
        CampaignOut(
            id=row.id,
            name=row.name,
            segment=row.segment,
            factors=row.factors,
            valid_days=row.valid_days,
            created_by=row.created_by,
            created_at=row.created_at,
            invited=counts.get(row.id, (0, 0, None))[0],
            answered=counts.get(row.id, (0, 0, None))[1],
            average_score=counts.get(row.id, (0, 0, None))[2],
        )
        for row in rows
    ]


@router.post("/account-manager/survey-campaigns", response_model=CampaignOut, status_code=201)
async def post_campaign(body: CampaignIn, who: Actor, runtime: RuntimeDep):
    service.check_quota_editor(who)  # sending to a segment is an admin's
    async with runtime.transaction() as session:
        campaign, _ = await campaigns.create_campaign(
            session,
            runtime.settings,
            name=body.name,
            segment=body.segment.model_dump(),
            factors=list(dict.fromkeys(body.factors)),
            valid_days=body.valid_days,
            by=who.subject,
        )
        [out] = await _out(session, [campaign])
        return out


@router.get("/account-manager/survey-campaigns", response_model=list[CampaignOut])
async def get_campaigns(who: Actor, session: SessionDep):
    service.portfolio_owner(who, None)  # staff and account managers: the campaigns name no customer
    return await _out(session, await campaigns.list_campaigns(session))


@router.get("/account-manager/survey-campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(campaign_id: InvitationId, who: Actor, session: SessionDep):
    service.portfolio_owner(who, None)
    [out] = await _out(session, [await campaigns.get_campaign(session, campaign_id)])
    return out


@router.get("/satisfaction-survey-links/{invitation_id}", response_model=SurveyLinkPage)
async def get_link(invitation_id: InvitationId, token: Token, runtime: RuntimeDep, session: SessionDep):
    invitation = await campaigns.open_link(session, runtime.settings, invitation_id, token)
    campaign = await campaigns.get_campaign(session, invitation.campaign_id)
    return SurveyLinkPage(
        campaign_name=campaign.name,
        language=invitation.language,
        factors=campaign.factors,
        expires_at=invitation.expires_at,
        answered=invitation.answered_at is not None,
    )


@router.post("/satisfaction-survey-links/{invitation_id}", response_model=SurveyLinkAnsweredOut)
async def post_link(invitation_id: InvitationId, body: SurveyLinkAnswerIn, runtime: RuntimeDep):
    async with runtime.transaction() as session:
        invitation = await campaigns.answer(
            session, runtime.settings, invitation_id, body.token, score=body.score, factors=dict(body.factors), comment=body.comment
        )
        return SurveyLinkAnsweredOut(score=invitation.score, factors=invitation.factors, answered_at=invitation.answered_at)


PROBLEMS: ProblemMapping = {
    links.InvalidLink: lambda exc: Problem(403, "Invalid survey token", "The survey link is not valid."),
    links.LinkExpired: lambda exc: Problem(410, "Survey link expired", "This survey link is no longer valid."),
    campaigns.CampaignNotFound: lambda exc: Problem(404, "Not Found", f"No survey campaign {exc}.", type_="urn:crm:problem:not-found"),
    campaigns.EmptySegment: lambda exc: Problem(
        422,
        "Validation failed",
        f"Nobody to ask: {exc}.",
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["body", "segment"], "msg": str(exc), "type": "value_error"}],
    ),
    campaigns.AlreadyAnswered: lambda exc: Problem(409, "Survey answered", str(exc), type_="urn:crm:problem:survey-answered"),
    campaigns.UnaskedFactors: lambda exc: Problem(
        422,
        "Validation failed",
        f"Factors not asked in this campaign; asked: {', '.join(exc.asked)}.",
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["body", "factors", f], "msg": "not asked in this campaign", "type": "value_error"} for f in exc.factors],
    ),
}
