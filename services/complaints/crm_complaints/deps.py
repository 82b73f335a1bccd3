"""What a route of the complaint service takes as dependencies: the actor (complaints' own, with its rules of who may
do what), a unit of work, the database (for the plain-row reads of the lookup), the settings and the audit trail; the
read session is crm_common.deps' (re-exported). Routes never reach into the request's state themselves."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.audit import AuditTrail
from crm_common.db import Database
from crm_common.deps import SessionDep, current_runtime, read_session
from crm_common.problems import Problem
from crm_complaints.complaints.access import Actor
from crm_complaints.complaints.schemas import _has_nul
from crm_complaints.settings import ComplaintsSettings

__all__ = ["ActorDep", "AuditDep", "DatabaseDep", "SessionDep", "SettingsDep", "TransactionDep", "actor_of", "no_nul", "read_session"]


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


def unit_of_work(request: Request) -> Callable[[], AbstractAsyncContextManager[AsyncSession]]:
    """`async with transaction() as session:` inside the route: the change commits before the answer is built."""
    return current_runtime(request).transaction


def database(request: Request) -> Database:
    return current_runtime(request).db


def settings(request: Request) -> ComplaintsSettings:
    return current_runtime(request).settings


def audit_trail(request: Request) -> AuditTrail:
    return current_runtime(request).audit


ActorDep = Annotated[Actor | None, Depends(actor_of)]
TransactionDep = Annotated[Callable[[], AbstractAsyncContextManager[AsyncSession]], Depends(unit_of_work)]
DatabaseDep = Annotated[Database, Depends(database)]
SettingsDep = Annotated[ComplaintsSettings, Depends(settings)]
AuditDep = Annotated[AuditTrail, Depends(audit_trail)]
