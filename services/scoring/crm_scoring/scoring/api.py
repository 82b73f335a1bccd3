"""Thin routers: scores, lists, reports, admin recompute. The work is in service.py and reports.py, whose refusals
become problem details in one place (PROBLEMS)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.problems import Problem, ProblemMapping
from crm_scoring.reports.filters import ReportFilters, report_filters
from crm_scoring.scoring import reports, service
from crm_scoring.scoring.schemas import RecomputeResult, RiskLevel, ScoreDetail, ScorePage, ScoreSummary

scores_router = APIRouter(prefix="/scores", tags=["scores"])
reports_router = APIRouter(prefix="/reports", tags=["reports"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])

CHART_MEDIA = {"svg": "image/svg+xml", "png": "image/png"}
Filters = Annotated[ReportFilters, Depends(report_filters)]  # the management reports' (crm_scoring.reports)


@scores_router.get("", response_model=ScorePage)
async def list_scores(
    session: SessionDep,
    abc_class: Literal["A", "B", "C", "D"] | None = None,
    tier: Literal["key_account", "ordinary", "small", "at_risk"] | None = None,
    segment: str | None = Query(None, max_length=30),
    risk: RiskLevel | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
):
    filters = {"abc_class": abc_class, "tier": tier, "rfm_segment": segment, "churn_risk": risk}
    rows, next_cursor = await service.score_page(session, list(ScoreSummary.model_fields), filters=filters, cursor=cursor, limit=limit)
    return ScorePage(items=[ScoreSummary.model_validate(r) for r in rows], next_cursor=next_cursor)


@scores_router.get("/{customer_id}", response_model=ScoreDetail)
async def get_scores(customer_id: str, session: SessionDep, history_limit: int = Query(50, ge=0, le=1000)):
    row, history = await service.customer_score_detail(session, customer_id, history_limit)
    data = {k: row[k] for k in ScoreSummary.model_fields}
    return ScoreDetail(**data, explanations=row["detail"] or {}, history=history)


@reports_router.get("/pareto")
async def pareto_report(session: SessionDep, runtime: RuntimeDep, f: Filters):
    return await reports.pareto(session, runtime.settings, f)


@reports_router.get("/pareto.{fmt}")
async def pareto_chart(fmt: Literal["svg", "png"], session: SessionDep, runtime: RuntimeDep, f: Filters):
    report = await reports.pareto(session, runtime.settings, f)
    return Response(reports.pareto_chart(report, fmt), media_type=CHART_MEDIA[fmt])


@reports_router.get("/model")
async def model_report(session: SessionDep, calibration_end: dt.date, holdout_end: dt.date | None = None):
    return await reports.model_report(session, calibration_end, holdout_end)


@reports_router.get("/model.{fmt}")
async def model_chart(fmt: Literal["svg", "png"], session: SessionDep, calibration_end: dt.date, holdout_end: dt.date | None = None):
    report = await reports.model_report(session, calibration_end, holdout_end)
    return Response(await asyncio.to_thread(reports.model_chart, report, fmt), media_type=CHART_MEDIA[fmt])


@admin_router.post("/recompute", response_model=RecomputeResult)
async def recompute(runtime: RuntimeDep):
    as_of = runtime.clock()
    async with runtime.transaction() as session:
        result = await service.recompute_population(session, runtime.settings, as_of)
    return RecomputeResult(customers=result["customers"], events=result["events"], model=result["model"], as_of=as_of.date())


PROBLEMS: ProblemMapping = {
    service.ScoresNotFound: lambda exc: Problem(404, "Scores not found", str(exc)),
    service.InvalidCursor: lambda exc: Problem(
        422,
        "Validation failed",
        str(exc),
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
    ),
    reports.ModelCannotFit: lambda exc: Problem(422, "Cannot fit the model", str(exc)),
}
"""What scoring's refusals answer (installed by create_service_app)."""
