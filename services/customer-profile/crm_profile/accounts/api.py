"""The account manager's workspace: GET /account-manager/portfolio, /account-manager/worklist,
GET/PUT /account-manager/visit-quotas. Thin: the actor and the session come from dependencies, the work from
service.py, whose domain errors become problem details in one place (PROBLEMS)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from crm_common.db import utcnow
from crm_common.deps import ActorDep, RuntimeDep, SessionDep
from crm_common.problems import Problem, ProblemMapping
from crm_profile.accounts import service
from crm_profile.accounts.schemas import PortfolioPage, QuotaIn, QuotaOut, Worklist

router = APIRouter(prefix="/account-manager", tags=["account manager"])


async def actor(caller: ActorDep) -> service.Actor | None:
    return service.Actor(caller.id, caller.role) if caller.known else None


async def today() -> dt.date:
    return utcnow().astimezone(service.BUSINESS_ZONE).date()


Actor = Annotated[service.Actor | None, Depends(actor)]
Today = Annotated[dt.date, Depends(today)]
Manager = Annotated[
    str | None,
    Query(
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="Whose portfolio (staff only; an account manager always gets their own).",
    ),
]


@router.get("/portfolio", response_model=PortfolioPage)
async def get_portfolio(
    who: Actor,
    session: SessionDep,
    day: Today,
    account_manager: Manager = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
):
    owner = service.portfolio_owner(who, account_manager)
    items = await service.portfolio(session, owner, day, limit=limit + 1, after=cursor)
    more = len(items) > limit
    items = items[:limit]
    return PortfolioPage(items=items, next_cursor=items[-1].customer_id if more else None)


@router.get("/worklist", response_model=Worklist)
async def get_worklist(
    who: Actor, session: SessionDep, day: Today, account_manager: Manager = None, limit: Annotated[int, Query(ge=1, le=1000)] = 500
):
    owner = service.portfolio_owner(who, account_manager)
    return Worklist(items=await service.worklist(session, owner, day, limit=limit))


@router.get("/visit-quotas", response_model=list[QuotaOut])
async def get_quotas(session: SessionDep):
    return await service.list_quotas(session)


@router.put("/visit-quotas", response_model=list[QuotaOut])
async def put_quotas(quotas: list[QuotaIn], who: Actor, runtime: RuntimeDep):
    service.check_quota_editor(who)
    async with runtime.transaction() as session:
        return await service.replace_quotas(session, quotas)


PROBLEMS: ProblemMapping = {
    service.ActorRequired: lambda exc: Problem(
        401, "Actor required", "X-Actor-Id and X-Actor-Role headers are required (set by the gateway)."
    ),
    service.Forbidden: lambda exc: Problem(403, "Forbidden", str(exc)),
    service.InvalidQuotas: lambda exc: Problem(
        422, "Validation failed", "The visit quotas are not valid.", type_="urn:crm:problem:validation", errors=exc.errors
    ),
}
"""What the workspace's domain errors answer (installed by create_service_app)."""
