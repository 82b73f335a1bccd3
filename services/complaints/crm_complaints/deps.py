"""What a route of the complaint service takes as dependencies: the actor (crm_common's caller, read from the
gateway's headers, as complaints' Actor, which knows who is staff and who may do what), a unit of work, the database
(for the plain-row reads of the lookup), the settings and the audit trail; the read session is crm_common.deps'
(re-exported). Routes never reach into the request's state themselves; every dependency is async (crm_common.deps)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.audit import AuditTrail
from crm_common.db import Database
from crm_common.deps import Actor as Caller
from crm_common.deps import SessionDep, current_runtime, read_session
from crm_common.problems import Problem
from crm_complaints.complaints.access import Actor
from crm_complaints.complaints.schemas import _has_nul
from crm_complaints.settings import ComplaintsSettings

__all__ = ["ActorDep", "AuditDep", "DatabaseDep", "SessionDep", "SettingsDep", "TransactionDep", "actor_of", "no_nul", "read_session"]


def actor_from(caller: Caller) -> Actor | None:
    """The caller as complaints' Actor; a customer acts as the customer the gateway names (X-Customer-Id). None when
    the gateway named no caller or no role."""
    role = (caller.role or "").strip().lower()
    actor_id = (caller.customer_id or caller.id) if role == "customer" else caller.id
    if not actor_id or not role:
        return None
    return Actor(id=actor_id, role=role, team=caller.team)


def actor_of(request: Request) -> Actor | None:
    return actor_from(Caller.from_headers(request.headers))


async def actor_dependency(request: Request) -> Actor | None:
    return actor_of(request)


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


async def unit_of_work(request: Request) -> Callable[[], AbstractAsyncContextManager[AsyncSession]]:
    """`async with transaction() as session:` inside the route: the change commits before the answer is built."""
    return current_runtime(request).transaction


async def database(request: Request) -> Database:
    return current_runtime(request).db


async def settings(request: Request) -> ComplaintsSettings:
    return current_runtime(request).settings


async def audit_trail(request: Request) -> AuditTrail:
    return current_runtime(request).audit


ActorDep = Annotated[Actor | None, Depends(actor_dependency)]
TransactionDep = Annotated[Callable[[], AbstractAsyncContextManager[AsyncSession]], Depends(unit_of_work)]
DatabaseDep = Annotated[Database, Depends(database)]
SettingsDep = Annotated[ComplaintsSettings, Depends(settings)]
AuditDep = Annotated[AuditTrail, Depends(audit_trail)]
