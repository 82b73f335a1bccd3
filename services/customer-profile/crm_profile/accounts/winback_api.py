"""Win-back: GET /account-manager/win-back-reasons, GET/PUT /account-manager/win-back-call-agents,
GET /account-manager/win-back-cases(/{id}), POST .../survey, .../offers, .../offers/{offer_id}/response and .../outcome,
GET /account-manager/win-back-report (+ .csv). The same actor rules as the portfolio: an account manager sees their own
cases (another manager's case is a 404), staff any manager's. The survey call is the neutral agent's (or an admin's);
offers are the account manager's (or an admin's)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.events.bounds import FactMonth
from crm_common.problems import Problem, ProblemMapping
from crm_profile.accounts import service, winback
from crm_profile.accounts.api import Actor, Manager, Today
from crm_profile.accounts.models import WinBackCase
from crm_profile.accounts.schemas import (
    CallAgentsIn,
    CallAgentsOut,
    OutcomeIn,
    ReasonOut,
    SurveyIn,
    WinBackCaseOut,
    WinBackCasePage,
    WinBackOfferIn,
    WinBackOfferOut,
    WinBackOfferResponseIn,
    WinBackReport,
)

router = APIRouter(prefix="/account-manager", tags=["win-back"])


@router.get("/win-back-reasons", response_model=list[ReasonOut])
async def get_reasons(session: SessionDep):
    return await winback.list_reasons(session)


async def _cases_out(session, cases: list[WinBackCase]) -> list[WinBackCaseOut]:
    offers = await winback.offers_of(session, [case.id for case in cases])
    return [
        WinBackCaseOut.model_validate(case).model_copy(
            update={"offers": [WinBackOfferOut.model_validate(o) for o in offers.get(case.id, [])]}
        )
        for case in cases
    ]


@router.get("/win-back-call-agents", response_model=CallAgentsOut)
async def get_call_agents(who: Actor, session: SessionDep):
    service.portfolio_owner(who, None)  # staff and account managers
    return CallAgentsOut(agents=await winback.call_agents(session))


@router.put("/win-back-call-agents", response_model=CallAgentsOut)
async def put_call_agents(body: CallAgentsIn, who: Actor, runtime: RuntimeDep):
    service.check_quota_editor(who)  # the workspace's data is an admin's
    async with runtime.transaction() as session:
        return CallAgentsOut(agents=await winback.set_call_agents(session, body.agents))


@router.get("/win-back-cases", response_model=WinBackCasePage)
async def get_cases(
    who: Actor,
    session: SessionDep,
    account_manager: Manager = None,
    status: Literal["in_progress", "won_back", "lost_for_good"] | None = None,
    call_agent: Annotated[str | None, Query(max_length=100, description="Only the calls given to this neutral agent.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=36)] = None,
):
    owner = service.portfolio_owner(who, account_manager)
    cases = await winback.list_cases(session, owner, status, limit=limit + 1, after=cursor, call_agent=call_agent)
    more = len(cases) > limit
    cases = cases[:limit]
    return WinBackCasePage(items=await _cases_out(session, cases), next_cursor=cases[-1].id if more else None)


@router.get("/win-back-cases/{case_id}", response_model=WinBackCaseOut)
async def get_case(case_id: str, who: Actor, session: SessionDep):
    [case] = await _cases_out(session, [await winback.get_case(session, case_id, service.portfolio_owner(who, None))])
    return case


@router.post("/win-back-cases/{case_id}/survey", response_model=WinBackCaseOut)
async def post_survey(case_id: str, body: SurveyIn, who: Actor, runtime: RuntimeDep):
    owner = service.portfolio_owner(who, None)
    async with runtime.transaction() as session:
        case = await winback.get_case(session, case_id, owner)
        winback.check_surveyor(case, who)
        case = await winback.record_survey(
            session, case, reasons=body.reasons, reason_text=body.reason_text, would_return_if=body.would_return_if, surveyed_by=who.subject
        )
        [out] = await _cases_out(session, [case])
        return out


@router.post("/win-back-cases/{case_id}/offers", response_model=WinBackOfferOut, status_code=201)
async def post_offer(case_id: str, body: WinBackOfferIn, who: Actor, runtime: RuntimeDep, day: Today):
    owner = winback.offer_maker(who)
    async with runtime.transaction() as session:
        case = await winback.get_case(session, case_id, owner)
        offer = await winback.send_offer(
            session,
            case,
            summary=body.summary,
            discount_percent=body.discount_percent,
            valid_until=body.valid_until,
            made_by=who.subject,
            today=day,
        )
        return WinBackOfferOut.model_validate(offer)


@router.post("/win-back-cases/{case_id}/offers/{offer_id}/response", response_model=WinBackOfferOut)
async def post_offer_response(case_id: str, offer_id: str, body: WinBackOfferResponseIn, who: Actor, runtime: RuntimeDep):
    owner = winback.offer_maker(who)
    async with runtime.transaction() as session:
        case = await winback.get_case(session, case_id, owner)
        offer = await winback.record_offer_response(session, case, offer_id, response=body.response, note=body.note)
        return WinBackOfferOut.model_validate(offer)


@router.post("/win-back-cases/{case_id}/outcome", response_model=WinBackCaseOut)
async def post_outcome(case_id: str, body: OutcomeIn, who: Actor, runtime: RuntimeDep):
    owner = service.portfolio_owner(who, None)
    async with runtime.transaction() as session:
        case = await winback.get_case(session, case_id, owner)
        case = await winback.record_outcome(session, case, outcome=body.outcome, note=body.note)
        [out] = await _cases_out(session, [case])
        return out


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
    winback.OfferNotFound: lambda exc: Problem(404, "Offer not found", f"No offer {exc} on this case."),
    winback.OfferAnswered: lambda exc: Problem(409, "Offer answered", str(exc), type_="urn:crm:problem:win-back-offer-answered"),
    winback.OfferExpired: lambda exc: Problem(
        422,
        "Validation failed",
        f"The offer is not valid: {exc}.",
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["body", "valid_until"], "msg": str(exc), "type": "value_error"}],
    ),
    winback.InvalidCallAgents: lambda exc: Problem(
        422, "Validation failed", "The pool of call agents is not valid.", type_="urn:crm:problem:validation", errors=exc.errors
    ),
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
