"""The public survey resource: `GET/POST /survey/{complaint_id}` with the signed token of the link, no sign-in.

The gateway forwards these without an identity (its rule is public); the token is the only key. The link's
exceptions become problem details in crm_complaints.problems.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from crm_common.db import utcnow
from crm_complaints.complaints.lifecycle import answer_survey
from crm_complaints.complaints.lookup import get_complaint
from crm_complaints.deps import SessionDep, SettingsDep, TransactionDep, no_nul
from crm_complaints.survey import service
from crm_complaints.survey.schemas import PublicSurveyIn, SurveyAnsweredOut, SurveyPageOut

router = APIRouter(tags=["survey"])
Token = Annotated[str, Query(min_length=1, max_length=200)]


@router.get("/survey/{complaint_id}", response_model=SurveyPageOut)
async def survey_page(complaint_id: str, token: Token, session: SessionDep, settings: SettingsDep):
    no_nul(complaint_id=complaint_id, token=token)
    complaint = await get_complaint(session, complaint_id)
    service.check_link_token(complaint, token, settings, utcnow())
    return SurveyPageOut(**service.survey_page(complaint).__dict__)


@router.post("/survey/{complaint_id}", response_model=SurveyAnsweredOut)
async def answer(complaint_id: str, data: PublicSurveyIn, transaction: TransactionDep, settings: SettingsDep):
    no_nul(complaint_id=complaint_id)
    async with transaction() as session:
        complaint = await answer_survey(
            session, complaint_id, score=data.score, comment=data.comment, token=data.token, actor=None, settings=settings
        )
        return SurveyAnsweredOut(complaint_number=complaint.number, score=complaint.survey_score, answered_at=complaint.survey_answered_at)
