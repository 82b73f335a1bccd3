"""Key-account monthly service reports (docs/account-management.md): a customer's reports and their downloads,
the customer's opt-in, one month's reports of a portfolio, and the operators' run of a month."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.problems import Problem, ProblemMapping
from crm_profile.accounts import reports, service
from crm_profile.accounts.api import Actor, Manager, Today
from crm_profile.accounts.models import KeyAccountReportSubscription
from crm_profile.accounts.schemas import (
    KeyAccountReportOut,
    KeyAccountReportPage,
    ReportRunIn,
    ReportRunOut,
    ReportSubscriptionIn,
    ReportSubscriptionOut,
)

router = APIRouter(tags=["key-account reports"])
CustomerId = Annotated[str, Path(max_length=36)]
Month = Annotated[str, Path(pattern=reports.MONTH_PATTERN, description="YYYY-MM")]


@router.get("/customers/{customer_id}/key-account-reports", response_model=list[KeyAccountReportOut])
async def get_customer_reports(customer_id: CustomerId, who: Actor, session: SessionDep):
    return await reports.customer_reports(session, who, customer_id)


@router.get(
    "/customers/{customer_id}/key-account-reports/{month}",
    response_model=KeyAccountReportOut,
    responses={200: {"content": {"text/csv": {}, "text/markdown": {}}}},
)
async def get_customer_report(
    customer_id: CustomerId, month: Month, who: Actor, session: SessionDep, format: Literal["json", "csv", "md"] = "json"
):
    report = await reports.customer_report(session, who, customer_id, month)
    if format == "json":
        return report
    body, media = (
        (reports.as_csv(report.content), "text/csv") if format == "csv" else (reports.as_markdown(report.content), "text/markdown")
    )
    filename = f"key-account-report-{customer_id}-{month}.{format}"
    return Response(body, media_type=f"{media}; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/customers/{customer_id}/key-account-report-subscription", response_model=ReportSubscriptionOut)
async def get_subscription(customer_id: CustomerId, who: Actor, session: SessionDep):
    reports.check_subscription_editor(who)
    await reports.subscription_customer(session, who, customer_id)
    row = await session.get(KeyAccountReportSubscription, customer_id)
    return row or ReportSubscriptionOut(customer_id=customer_id, customer_opted_in=False, changed_at=None, changed_by=None)


@router.put("/customers/{customer_id}/key-account-report-subscription", response_model=ReportSubscriptionOut)
async def put_subscription(customer_id: CustomerId, body: ReportSubscriptionIn, who: Actor, runtime: RuntimeDep):
    reports.check_subscription_editor(who)
    async with runtime.transaction() as session:
        return ReportSubscriptionOut.model_validate(await reports.set_subscription(session, who, customer_id, body.customer_opted_in))


@router.get("/account-manager/key-account-reports", response_model=KeyAccountReportPage)
async def get_month_reports(
    who: Actor,
    session: SessionDep,
    month: Annotated[str, Query(pattern=reports.MONTH_PATTERN, description="YYYY-MM")],
    account_manager: Manager = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=36)] = None,
):
    owner = service.portfolio_owner(who, account_manager)
    items = await reports.month_reports(session, owner, month, limit=limit + 1, after=cursor)
    more = len(items) > limit
    items = items[:limit]
    return KeyAccountReportPage(items=items, next_cursor=items[-1].customer_id if more else None)


@router.get("/account-manager/key-account-reports/runs", response_model=list[ReportRunOut])
async def get_runs(who: Actor, session: SessionDep):
    _check_operator(who)
    return await reports.list_runs(session)


@router.post(
    "/account-manager/key-account-reports/runs",
    response_model=ReportRunOut,
    status_code=201,
    responses={200: {"model": ReportRunOut, "description": "The month had been run already: nothing written."}},
)
async def post_run(body: ReportRunIn, who: Actor, runtime: RuntimeDep, day: Today):
    _check_operator(who)
    period = reports.parse_month(body.month, day)
    run, created = await reports.run_month(runtime, period, started_by=who.subject, chunk_size=runtime.settings.key_account_reports_chunk)
    out = ReportRunOut.model_validate(run).model_copy(update={"created": created})
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


def _check_operator(who: service.Actor | None) -> None:
    if who is None:
        raise service.ActorRequired()
    if who.role != "admin":
        raise service.Forbidden("Only an admin runs the monthly reports.")


PROBLEMS: ProblemMapping = {
    reports.BadMonth: lambda exc: Problem(
        422,
        "Validation failed",
        f"The month is not valid: {exc}.",
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["body", "month"], "msg": str(exc), "type": "value_error"}],
    ),
    reports.CustomerNotFound: lambda exc: Problem(404, "Not Found", "Customer not found.", type_="urn:crm:problem:not-found"),
    reports.ReportNotFound: lambda exc: Problem(404, "Not Found", f"{exc}.", type_="urn:crm:problem:not-found"),
}
"""What the key-account reports' domain errors answer (installed by create_service_app)."""
