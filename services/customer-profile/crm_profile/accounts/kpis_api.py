"""KPIs per account manager: GET /account-manager/kpis?period=&sort=&account_manager= (staff: every manager, ranked;
an account manager: their own row, with their place among all)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from crm_common.deps import SessionDep
from crm_common.problems import Problem, ProblemMapping
from crm_profile.accounts import kpis, service
from crm_profile.accounts.api import Actor, Manager, Today
from crm_profile.accounts.schemas import KpiReport

router = APIRouter(prefix="/account-manager", tags=["account manager KPIs"])
RankingKey = Literal[
    "revenue",
    "revenue_growth",
    "retention_rate",
    "churn_rate",
    "win_backs",
    "visit_attainment",
    "follow_up_on_time_rate",
    "complaint_rate",
    "post_complaint_satisfaction",
    "satisfaction",
    "service_level_breaches",
]


@router.get("/kpis", response_model=KpiReport)
async def get_kpis(
    who: Actor,
    session: SessionDep,
    day: Today,
    period: Annotated[str, Query(max_length=7, description="A month YYYY-MM or a quarter YYYY-Qn (Asia/Shanghai).")],
    sort: RankingKey = "revenue",
    account_manager: Manager = None,
):
    owner = service.portfolio_owner(who, account_manager)
    chosen = kpis.parse_period(period, day)
    rows = kpis.rank(await kpis.manager_kpis(session, chosen, day), sort)  # ranked among all, then narrowed
    if owner is not None:
        rows = [row for row in rows if row["account_manager"] == owner]
    return KpiReport(
        period=chosen.label,
        start=chosen.start,
        end=chosen.end,
        previous_period=chosen.previous().label,
        revenue_currency=kpis.revenue_currency(),
        sort=sort,
        items=rows,
    )


PROBLEMS: ProblemMapping = {
    kpis.BadPeriod: lambda exc: Problem(
        422,
        "Validation failed",
        f"The period is not valid: {exc}.",
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["query", "period"], "msg": str(exc), "type": "value_error"}],
    ),
}
