"""The public survey resource: `GET/POST /survey/{complaint_id}` with the signed token of the link, no sign-in.

The gateway forwards these without an identity (its rule is public); the token is the only key.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from crm_common.db import utcnow
from crm_common.problems import Problem, problem_response
from crm_common.runtime import runtime_of
from crm_complaints.complaints import service as complaints_service
from crm_complaints.complaints.api import no_nul
from crm_complaints.survey import service
from crm_complaints.survey.schemas import PublicSurveyIn, SurveyAnsweredOut, SurveyPageOut

router = APIRouter(tags=["survey"])


def runtime(request: Request):
    return runtime_of(request)


Runtime = Annotated[object, Depends(runtime)]
Token = Annotated[str, Query(min_length=1, max_length=200)]


@router.get("/survey/{complaint_id}", response_model=SurveyPageOut)
async def survey_page(complaint_id: str, token: Token, rt: Runtime):
    no_nul(complaint_id=complaint_id, token=token)
    async with rt.db.sessions() as session:
        complaint = await complaints_service.get_complaint(session, complaint_id)
        service.check_link_token(complaint, token, rt.settings, utcnow())
        return SurveyPageOut(**service.survey_page(complaint).__dict__)


@router.post("/survey/{complaint_id}", response_model=SurveyAnsweredOut)
async def answer(complaint_id: str, data: PublicSurveyIn, rt: Runtime):
    no_nul(complaint_id=complaint_id)
    async with rt.transaction() as session:
        complaint = await complaints_service.answer_survey(session, complaint_id, score=data.score, comment=data.comment,
                                                           token=data.token, actor=None, settings=rt.settings)
        return SurveyAnsweredOut(complaint_number=complaint.number, score=complaint.survey_score, answered_at=complaint.survey_answered_at)


def install_survey_problems(app: FastAPI) -> None:
    """The one place the survey link's domain exceptions become problem details."""

    @app.exception_handler(service.InvalidSurveyLink)
    async def _invalid(request: Request, exc: service.InvalidSurveyLink):
        return problem_response(Problem(403, "Invalid survey token", "The survey link is not valid for this complaint."), request)

    @app.exception_handler(service.SurveyLinkExpired)
    async def _expired(request: Request, exc: service.SurveyLinkExpired):
        return problem_response(Problem(410, "Survey link expired", "This survey link is no longer valid."), request)
