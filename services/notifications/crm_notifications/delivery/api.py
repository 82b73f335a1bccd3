"""The delivery log, provider receipts, the in-app inbox and the notification statistics: thin routes over
service.py and receipts.py, whose refusals become problem details in one place (PROBLEMS)."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Query

from crm_common.deps import ActorDep, RuntimeDep, SessionDep
from crm_common.problems import Problem, ProblemMapping
from crm_common.production import revealed
from crm_notifications.delivery import receipts, service
from crm_notifications.delivery.schemas import DeliveryOut, InboxTaskOut, ReceiptIn

router = APIRouter(tags=["deliveries"])


@router.get("/deliveries", response_model=list[DeliveryOut])
async def deliveries(
    session: SessionDep, customer_id: str = Query(min_length=1), status: str | None = None, limit: int = Query(default=100, ge=1, le=1000)
):
    """Every message to the customer's contacts, newest first, with its full attempt log."""
    return await service.deliveries_of(session, customer_id, status, limit)


@router.get("/deliveries/{message_id}", response_model=DeliveryOut)
async def delivery(message_id: str, session: SessionDep):
    return await service.delivery(session, message_id)


@router.post("/deliveries/{message_id}/receipt", response_model=DeliveryOut)
async def receipt(message_id: str, data: ReceiptIn, runtime: RuntimeDep, authorization: str | None = Header(default=None)):
    """Provider callback (delivery report or bounce). Authenticated with NOTIFICATIONS_PROVIDER_TOKEN as a bearer token."""
    token = revealed(runtime.settings.provider_token)
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise Problem(403, "Forbidden", "A valid provider token is required.")
    async with runtime.transaction() as session:
        message = await receipts.apply_receipt(session, message_id, data.status, data.detail, runtime.clock.now())
        return (await service.with_log(session, [message]))[0]


@router.post("/inbox/{task_id}/done", response_model=InboxTaskOut)
async def inbox_done(task_id: str, runtime: RuntimeDep, actor: ActorDep):
    owner = service.inbox_owner(actor)
    async with runtime.transaction() as session:
        return InboxTaskOut.model_validate(await service.complete_task(session, task_id, owner, runtime.clock.now()))


@router.get("/inbox", response_model=list[InboxTaskOut])
async def inbox(
    session: SessionDep,
    actor: ActorDep,
    assignee: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=300,
            pattern=r"^[^\x00-\x1f\x7f]*$",
            description="Whose tasks (staff); an account manager always gets their own.",
        ),
    ] = None,
    open_only: bool = True,
):
    return await service.inbox_tasks(session, service.inbox_assignee(service.inbox_owner(actor), assignee), open_only)


@router.get("/reports/notifications")
async def report(runtime: RuntimeDep, session: SessionDep, days: int = Query(default=30, ge=1, le=366)):
    """Notification statistics for the dashboard: messages by status, channel and rule, suppression reasons."""
    since = runtime.clock.now() - dt.timedelta(days=days)
    return {"since": since, "days": days} | await service.statistics(session, since)


PROBLEMS: ProblemMapping = {
    receipts.DeliveryNotFound: lambda exc: Problem(404, "Delivery not found", str(exc)),
    receipts.ReceiptDoesNotApply: lambda exc: Problem(409, "Receipt does not apply", str(exc), status_now=exc.status_now),
    service.TaskNotFound: lambda exc: Problem(404, "Task not found", str(exc)),
    service.ActorRequired: lambda exc: Problem(401, "Actor required", "X-Actor-Id is required (set by the gateway)."),
    service.InboxForbidden: lambda exc: Problem(403, "Forbidden", str(exc)),
    service.AssigneeRequired: lambda exc: Problem(
        422,
        "Validation failed",
        "assignee is required.",
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["query", "assignee"], "msg": "Field required", "type": "missing"}],
    ),
}
