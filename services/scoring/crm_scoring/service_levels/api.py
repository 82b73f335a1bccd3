"""Thin routers: a customer's service-level trend, and the whole-base recomputation of a month."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request

from crm_common.runtime import runtime_of
from crm_scoring.service_levels import service
from crm_scoring.service_levels.schemas import MONTH_PATTERN, ComputeMonth, ComputeResult, ServiceLevelTrend

service_levels_router = APIRouter(prefix="/service-levels", tags=["service levels"])
service_levels_admin_router = APIRouter(prefix="/admin/service-levels", tags=["service levels"])


@service_levels_router.get("/{customer_id}", response_model=ServiceLevelTrend)
async def customer_trend(customer_id: str, request: Request, months: int = Query(12, ge=1, le=60),
                         until: str | None = Query(None, pattern=MONTH_PATTERN, description="Last month of the window (YYYY-MM); default: this month.")):
    runtime = runtime_of(request)
    last = service.parse_month(until) if until else runtime.clock().date()
    async with runtime.db.sessions() as session:
        return ServiceLevelTrend(customer_id=customer_id, months=await service.trend(session, customer_id, last, months))


@service_levels_admin_router.post("/compute", response_model=ComputeResult)
async def compute_month(body: ComputeMonth, request: Request):
    runtime = runtime_of(request)
    async with runtime.transaction() as session:
        records = await service.compute_month(session, body.month, runtime.clock(), runtime.settings)
    return ComputeResult(month=body.month, records=records)
