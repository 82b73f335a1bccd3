"""Quarterly satisfaction surveys of key accounts: POST/GET /customers/{customer_id}/satisfaction-surveys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from crm_common.db import utcnow
from crm_common.deps import RuntimeDep, SessionDep
from crm_common.problems import Problem, ProblemMapping
from crm_profile.accounts import reports, surveys
from crm_profile.accounts.api import Actor
from crm_profile.accounts.schemas import SatisfactionSurveyIn, SatisfactionSurveyOut

router = APIRouter(tags=["satisfaction surveys"])
CustomerId = Annotated[str, Path(max_length=36)]


@router.post("/customers/{customer_id}/satisfaction-surveys", response_model=SatisfactionSurveyOut, status_code=201)
async def post_survey(customer_id: CustomerId, body: SatisfactionSurveyIn, who: Actor, runtime: RuntimeDep):
    async with runtime.transaction() as session:
        survey = await surveys.record(
            session, who, customer_id, score=body.score, factors=dict(body.factors), comment=body.comment, answered_at=utcnow()
        )
        return SatisfactionSurveyOut.model_validate(survey)


@router.get("/customers/{customer_id}/satisfaction-surveys", response_model=list[SatisfactionSurveyOut])
async def get_surveys(customer_id: CustomerId, who: Actor, session: SessionDep):
    await reports.check_reader(session, who, await reports._customer(session, customer_id))
    return await surveys.list_for(session, customer_id)


PROBLEMS: ProblemMapping = {
    surveys.CustomerNotFound: lambda exc: Problem(404, "Not Found", "Customer not found.", type_="urn:crm:problem:not-found"),
    surveys.AlreadySurveyed: lambda exc: Problem(409, "Conflict", f"{exc}.", type_="urn:crm:problem:conflict"),
}
"""What the surveys' domain errors answer (installed by create_service_app)."""
