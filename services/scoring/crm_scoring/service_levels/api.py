"""Thin routers: a customer's service-level trend, and the whole-base recomputation of a month."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.events.bounds import FactMonth
from crm_common.problems import Problem, ProblemMapping
from crm_scoring.reports.filters import ReportFilters, report_filters
from crm_scoring.service_levels import reports, service
from crm_scoring.service_levels.schemas import ComputeMonth, ComputeResult, ServiceLevelTrend

service_levels_router = APIRouter(prefix="/service-levels", tags=["service levels"])
service_levels_admin_router = APIRouter(prefix="/admin/service-levels", tags=["service levels"])
service_levels_reports_router = APIRouter(prefix="/reports", tags=["service levels"])

Measure = Literal[tuple(reports.MEASURES)]
Filters = Annotated[ReportFilters, Depends(report_filters)]
PROBLEMS: ProblemMapping = {
    reports.TrendTooLong: lambda exc: Problem(
        422,
        "Validation failed",
        str(exc),
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["query", "period_end"], "msg": str(exc), "type": "value_error"}],
    ),
}
MonthQuery = Annotated[FactMonth, Query(description="YYYY-MM")]
MeasureQuery = Query("on_time_delivery_pct", description="The measure customers are ranked on, worst first.")


@service_levels_router.get("/{customer_id}", response_model=ServiceLevelTrend)
async def customer_trend(
    customer_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    months: int = Query(12, ge=1, le=60),
    until: Annotated[FactMonth | None, Query(description="Last month of the window (YYYY-MM); default: this month.")] = None,
):
    last = service.parse_month(until) if until else runtime.clock().date()
    return ServiceLevelTrend(customer_id=customer_id, months=await service.trend(session, customer_id, last, months))


@service_levels_admin_router.post("/compute", response_model=ComputeResult)
async def compute_month(body: ComputeMonth, runtime: RuntimeDep):
    async with runtime.transaction() as session:
        records = await service.compute_month(session, body.month, runtime.clock(), runtime.settings)
    return ComputeResult(month=body.month, records=records)


@service_levels_reports_router.get("/service-levels")
async def service_level_report(
    session: SessionDep,
    month: MonthQuery,
    f: Filters,
    measure: Measure = MeasureQuery,
    worst: int = Query(20, ge=1, le=1000),
    trend_months: int = Query(12, ge=1, le=60, description="Months of the trend ending with `month`, without a period."),
):
    return await reports.service_level_report(session, month, measure, worst, f, trend_months)


@service_levels_reports_router.get("/service-levels.csv")
async def service_level_csv(session: SessionDep, month: MonthQuery, f: Filters, measure: Measure = MeasureQuery):
    text = await reports.service_level_csv(session, month, measure, f)
    return Response(
        text, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="service-levels-{month}.csv"'}
    )
