"""Thin routers: scores, lists, reports, admin recompute."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from crm_common.problems import Problem
from crm_common.runtime import runtime_of
from crm_scoring.db import customer_scores, score_history
from crm_scoring.scoring import reports, service
from crm_scoring.scoring.schemas import RecomputeResult, RiskLevel, ScoreDetail, ScorePage, ScoreSummary

scores_router = APIRouter(prefix="/scores", tags=["scores"])
reports_router = APIRouter(prefix="/reports", tags=["reports"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])

CHART_MEDIA = {"svg": "image/svg+xml", "png": "image/png"}
SUMMARY_COLUMNS = [customer_scores.c[name] for name in ScoreSummary.model_fields]


def _encode_cursor(customer_id: str) -> str:
    return base64.urlsafe_b64encode(customer_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except Exception:
        raise Problem(422, "Validation failed", "The cursor is not one this service issued.", type_="urn:crm:problem:validation",
                      errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}]) from None


@scores_router.get("", response_model=ScorePage)
async def list_scores(
    request: Request,
    abc_class: Literal["A", "B", "C", "D"] | None = None,
    tier: Literal["key_account", "ordinary", "small", "at_risk"] | None = None,
    segment: str | None = Query(None, max_length=30),
    risk: RiskLevel | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
):
    stmt = select(*SUMMARY_COLUMNS).order_by(customer_scores.c.customer_id).limit(limit + 1)
    for column, value in ((customer_scores.c.abc_class, abc_class), (customer_scores.c.tier, tier), (customer_scores.c.rfm_segment, segment), (customer_scores.c.churn_risk, risk)):
        if value is not None:
            stmt = stmt.where(column == value)
    if cursor:
        stmt = stmt.where(customer_scores.c.customer_id > _decode_cursor(cursor))
    async with runtime_of(request).db.sessions() as session:
        rows = (await session.execute(stmt)).mappings().all()
    items = [ScoreSummary.model_validate(dict(r)) for r in rows[:limit]]
    return ScorePage(items=items, next_cursor=_encode_cursor(items[-1].customer_id) if len(rows) > limit else None)


@scores_router.get("/{customer_id}", response_model=ScoreDetail)
async def get_scores(customer_id: str, request: Request, history_limit: int = Query(50, ge=0, le=1000)):
    async with runtime_of(request).db.sessions() as session:
        row = (await session.execute(select(customer_scores).where(customer_scores.c.customer_id == customer_id))).mappings().first()
        if row is None:
            raise Problem(404, "Scores not found", f"No scores for customer {customer_id}.")
        history = (
            await session.execute(
                select(score_history.c.scored_at, score_history.c.scores).where(score_history.c.customer_id == customer_id).order_by(score_history.c.id.desc()).limit(history_limit)
            )
        ).mappings().all()
    data = {k: row[k] for k in ScoreSummary.model_fields}
    return ScoreDetail(**data, explanations=row["detail"] or {}, history=[dict(h) for h in history])


@reports_router.get("/pareto")
async def pareto_report(request: Request):
    runtime = runtime_of(request)
    async with runtime.db.sessions() as session:
        return await reports.pareto(session, runtime.settings)


@reports_router.get("/pareto.{fmt}")
async def pareto_chart(fmt: Literal["svg", "png"], request: Request):
    runtime = runtime_of(request)
    async with runtime.db.sessions() as session:
        report = await reports.pareto(session, runtime.settings)
    return Response(reports.pareto_chart(report, fmt), media_type=CHART_MEDIA[fmt])


async def _model_report(request: Request, calibration_end: dt.date, holdout_end: dt.date | None) -> dict:
    async with runtime_of(request).db.sessions() as session:
        try:
            return await reports.model_report(session, calibration_end, holdout_end)
        except ValueError as exc:
            raise Problem(422, "Cannot fit the model", str(exc)) from None


@reports_router.get("/model")
async def model_report(request: Request, calibration_end: dt.date, holdout_end: dt.date | None = None):
    return await _model_report(request, calibration_end, holdout_end)


@reports_router.get("/model.{fmt}")
async def model_chart(fmt: Literal["svg", "png"], request: Request, calibration_end: dt.date, holdout_end: dt.date | None = None):
    report = await _model_report(request, calibration_end, holdout_end)
    return Response(await asyncio.to_thread(reports.model_chart, report, fmt), media_type=CHART_MEDIA[fmt])


@admin_router.post("/recompute", response_model=RecomputeResult)
async def recompute(request: Request):
    runtime = runtime_of(request)
    as_of = runtime.clock()
    async with runtime.transaction() as session:
        result = await service.recompute_population(session, runtime.settings, as_of)
    return RecomputeResult(customers=result["customers"], events=result["events"], model=result["model"], as_of=as_of.date())
