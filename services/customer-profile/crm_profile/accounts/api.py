"""The account manager's workspace: GET /account-manager/portfolio, /account-manager/worklist,
GET/PUT /account-manager/visit-quotas. Thin: the actor and the session come from dependencies, the work from
service.py, whose domain errors become problem details in one place (install_workspace_problems)."""
from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import utcnow
from crm_common.problems import Problem, problem_response
from crm_common.runtime import runtime_of
from crm_profile.accounts import service
from crm_profile.accounts.schemas import PortfolioPage, QuotaIn, QuotaOut, Worklist

router = APIRouter(prefix="/account-manager", tags=["account manager"])


def actor(request: Request) -> service.Actor | None:
    subject, role = request.headers.get("X-Actor-Id"), request.headers.get("X-Actor-Role")
    return service.Actor(subject, role) if subject and role else None


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with runtime_of(request).db.sessions() as session:
        yield session


def today() -> dt.date:
    return utcnow().astimezone(service.BUSINESS_ZONE).date()


Actor = Annotated[service.Actor | None, Depends(actor)]
ReadSession = Annotated[AsyncSession, Depends(read_session)]
Today = Annotated[dt.date, Depends(today)]
Manager = Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$",
                                      description="Whose portfolio (staff only; an account manager always gets their own).")]


@router.get("/portfolio", response_model=PortfolioPage)
async def get_portfolio(who: Actor, session: ReadSession, day: Today, account_manager: Manager = None,
                        limit: Annotated[int, Query(ge=1, le=500)] = 200, cursor: Annotated[str | None, Query(max_length=100)] = None):
    owner = service.portfolio_owner(who, account_manager)
    items = await service.portfolio(session, owner, day, limit=limit + 1, after=cursor)
    more = len(items) > limit
    items = items[:limit]
    return PortfolioPage(items=items, next_cursor=items[-1].customer_id if more else None)


@router.get("/worklist", response_model=Worklist)
async def get_worklist(who: Actor, session: ReadSession, day: Today, account_manager: Manager = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 500):
    owner = service.portfolio_owner(who, account_manager)
    return Worklist(items=await service.worklist(session, owner, day, limit=limit))


@router.get("/visit-quotas", response_model=list[QuotaOut])
async def get_quotas(session: ReadSession):
    return await service.list_quotas(session)


@router.put("/visit-quotas", response_model=list[QuotaOut])
async def put_quotas(quotas: list[QuotaIn], who: Actor, request: Request):
    service.check_quota_editor(who)
    async with runtime_of(request).transaction() as session:
        return await service.replace_quotas(session, quotas)


def install_workspace_problems(app: FastAPI) -> None:
    """The one place the workspace's domain errors become problem details."""

    @app.exception_handler(service.ActorRequired)
    async def _actor(request: Request, exc: service.ActorRequired):
        return problem_response(Problem(401, "Actor required", "X-Actor-Id and X-Actor-Role headers are required (set by the gateway)."), request)

    @app.exception_handler(service.Forbidden)
    async def _forbidden(request: Request, exc: service.Forbidden):
        return problem_response(Problem(403, "Forbidden", str(exc)), request)

    @app.exception_handler(service.InvalidQuotas)
    async def _quotas(request: Request, exc: service.InvalidQuotas):
        return problem_response(Problem(422, "Validation failed", "The visit quotas are not valid.", type_="urn:crm:problem:validation",
                                        errors=exc.errors), request)
