"""Win-back: GET /account-manager/win-back-reasons, GET /account-manager/win-back-cases(/{id}), POST .../survey and
.../outcome, GET /account-manager/win-back-report (+ .csv). The same actor rules as the portfolio: an account manager
sees their own cases (another manager's case is a 404), staff any manager's."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.events.bounds import FactMonth
from crm_common.problems import Problem, ProblemMapping
from crm_profile.accounts import service, winback
from crm_profile.accounts.api import Actor, Manager, Today
from crm_profile.accounts.schemas import OutcomeIn, ReasonOut, SurveyIn, WinBackCaseOut, WinBackCasePage, WinBackReport

router = APIRouter(prefix="/account-manager", tags=["win-back"])


@router.get("/win-back-reasons", response_model=list[ReasonOut])
async def get_reasons(session: SessionDep):
    return await winback.list_reasons(session)


@router.get("/win-back-cases", response_model=WinBackCasePage)
async def get_cases(
    who: Actor,
    session: SessionDep,
    account_manager: Manager = None,
    status: Literal["in_progress", "won_back", "lost_for_good"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=36)] = None,
):
    owner = service.portfolio_owner(who, account_manager)
    cases = await winback.list_cases(session, owner, status, limit=limit + 1, after=cursor)
    more = len(cases) > limit
    cases = cases[:limit]
    return WinBackCasePage(items=cases, next_cursor=cases[-1].id if more else None)


@router.get("/win-back-cases/{case_id}", response_model=WinBackCaseOut)
async def get_case(case_id: str, who: Actor, session: SessionDep):
    return await winback.get_case(session, case_id, service.portfolio_owner(who, None))


@router.post("/win-back-cases/{case_id}/survey", response_model=WinBackCaseOut)
async def post_survey(case_id: str, body: SurveyIn, who: Actor, runtime: RuntimeDep):
    owner = service.portfolio_owner(who, None)
    async with runtime.transaction() as session:
        case = await winback.get_case(session, case_id, owner)
        case = await winback.record_survey(
            session, case, reasons=body.reasons, reason_text=body.reason_text, would_return_if=body.would_return_if, surveyed_by=who.subject
        )
        return WinBackCaseOut.model_validate(case)


@router.post("/win-back-cases/{case_id}/outcome", response_model=WinBackCaseOut)
async def post_outcome(case_id: str, body: OutcomeIn, who: Actor, runtime: RuntimeDep):
    owner = service.portfolio_owner(who, None)
    async with runtime.transaction() as session:
        case = await winback.get_case(session, case_id, owner)
        case = await winback.record_outcome(session, case, outcome=body.outcome, note=body.note)
        return WinBackCaseOut.model_validate(case)


async def _report(who, session, account_manager, since: str, until: str | None, day) -> tuple[str | None, str, str, list[dict]]:
    owner = service.portfolio_owner(who, account_manager)
    until = until or winback.month_of_day(day)
    if since > until:
        raise winback.BadPeriod("since is after until")
    if winback.months_between(since, until) > winback.MAX_REPORT_MONTHS:
        raise winback.BadPeriod(f"at most {winback.MAX_REPORT_MONTHS} months")
    return owner, since, until, await winback.report(session, owner, since, until)


@router.get("/win-back-report", response_model=WinBackReport)
async def get_report(
    who: Actor,
    session: SessionDep,
    day: Today,
    since: Annotated[FactMonth, Query()],
    until: Annotated[FactMonth | None, Query()] = None,
    account_manager: Manager = None,
):
    owner, since, until, months = await _report(who, session, account_manager, since, until, day)
    return WinBackReport(since=since, until=until, account_manager=owner, months=months)


@router.get("/win-back-report.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def get_report_csv(
    who: Actor,
    session: SessionDep,
    day: Today,
    since: Annotated[FactMonth, Query()],
    until: Annotated[FactMonth | None, Query()] = None,
    account_manager: Manager = None,
):
    _, since, until, months = await _report(who, session, account_manager, since, until, day)
    codes = [reason.code for reason in await winback.list_reasons(session)]
    return Response(
        winback.report_csv(months, codes),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="win-back-{since}-{until}.csv"'},
    )


PROBLEMS: ProblemMapping = {
    winback.CaseNotFound: lambda exc: Problem(404, "Win-back case not found", f"No win-back case {exc} of yours."),
    winback.CaseClosed: lambda exc: Problem(409, "Win-back case closed", str(exc), type_="urn:crm:problem:win-back-case-closed"),
    winback.UnknownReasons: lambda exc: Problem(
        422,
        "Validation failed",
        f"Unknown reasons; known: {', '.join(exc.known)}.",
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["body", "reasons"], "msg": f"unknown reason {code!r}", "type": "value_error"} for code in exc.codes],
    ),
    winback.BadPeriod: lambda exc: Problem(
        422,
        "Validation failed",
        f"The period is not valid: {exc}.",
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["query", "until"], "msg": str(exc), "type": "value_error"}],
    ),
}
