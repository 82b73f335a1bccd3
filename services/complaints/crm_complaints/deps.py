"""What a route of the complaint service takes as dependencies: the actor, a read session, a unit of work, the
database (for the plain-row reads of the lookup), the settings and the audit trail. Routes never reach into the
request's state themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.audit import AuditTrail
from crm_common.db import Database
from crm_common.problems import Problem
from crm_common.runtime import runtime_of
from crm_complaints.complaints.access import Actor
from crm_complaints.complaints.schemas import _has_nul
from crm_complaints.settings import ComplaintsSettings


def actor_of(request: Request) -> Actor | None:
    """Who acts, from the gateway's X-Actor-Id / X-Actor-Role / X-Actor-Team headers (a customer is named in X-Customer-Id);
    None without them."""
    actor_id = request.headers.get("x-actor-id")
    role = (request.headers.get("x-actor-role") or "").strip().lower()
    if role == "customer":
        actor_id = request.headers.get("x-customer-id") or actor_id
    if not actor_id or not role:
        return None
    return Actor(id=actor_id, role=role, team=request.headers.get("x-actor-team") or None)


def no_nul(**params) -> None:
    """Query and path values with NUL characters are bad input (PostgreSQL cannot compare them)."""
    bad = [name for name, value in params.items() if _has_nul(value)]
    if bad:
        raise Problem(
            422,
            "Validation failed",
            "NUL characters are not allowed.",
            type_="urn:crm:problem:validation",
            errors=[{"loc": ["query", name], "msg": "NUL characters are not allowed", "type": "value_error"} for name in bad],
        )


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with runtime_of(request).db.sessions() as session:
        yield session


def unit_of_work(request: Request) -> Callable[[], AbstractAsyncContextManager[AsyncSession]]:
    """`async with transaction() as session:` inside the route: the change commits before the answer is built."""
    return runtime_of(request).transaction


def database(request: Request) -> Database:
    return runtime_of(request).db


def settings(request: Request) -> ComplaintsSettings:
    return runtime_of(request).settings


def audit_trail(request: Request) -> AuditTrail:
    return runtime_of(request).audit


ActorDep = Annotated[Actor | None, Depends(actor_of)]
SessionDep = Annotated[AsyncSession, Depends(read_session)]
TransactionDep = Annotated[Callable[[], AbstractAsyncContextManager[AsyncSession]], Depends(unit_of_work)]
DatabaseDep = Annotated[Database, Depends(database)]
SettingsDep = Annotated[ComplaintsSettings, Depends(settings)]
AuditDep = Annotated[AuditTrail, Depends(audit_trail)]
