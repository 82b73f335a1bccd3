"""The one place where the complaint service's domain exceptions become problem details (RFC 9457).

The status comes from the exception's family; the title (and through it the problem type), the detail and the
machine-readable members come from the exception. Setup's exceptions are mapped in crm_complaints.setup.api.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from crm_common.problems import Problem, problem_response
from crm_complaints.complaints import errors
from crm_complaints.survey.service import InvalidSurveyLink, SurveyLinkExpired

PROBLEM_STATUS: dict[type[errors.ComplaintsError], int] = {
    errors.ActorRequired: 401,
    errors.NotAllowed: 403,
    errors.ComplaintNotFound: 404,
    errors.StateConflict: 409,
    errors.InvalidComplaintInput: 422,
    errors.ComplaintsError: 400,  # a refusal of no family above (none is raised today)
}


def problem_of(exc: errors.ComplaintsError) -> Problem:
    status = next(PROBLEM_STATUS[family] for family in type(exc).__mro__ if family in PROBLEM_STATUS)
    return Problem(status, exc.title, exc.detail, **exc.facts)


def install_complaint_problems(app: FastAPI) -> None:
    @app.exception_handler(errors.ComplaintsError)
    async def _complaints(request: Request, exc: errors.ComplaintsError):
        return problem_response(problem_of(exc), request)

    @app.exception_handler(InvalidSurveyLink)
    async def _invalid_link(request: Request, exc: InvalidSurveyLink):
        return problem_response(Problem(403, "Invalid survey token", "The survey link is not valid for this complaint."), request)

    @app.exception_handler(SurveyLinkExpired)
    async def _expired_link(request: Request, exc: SurveyLinkExpired):
        return problem_response(Problem(410, "Survey link expired", "This survey link is no longer valid."), request)
