from __future__ import annotations

import datetime as dt

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select

from crm_common.inputs import Input
from crm_common.problems import Problem
from crm_common.production import revealed
from crm_common.runtime import runtime_of
from crm_notifications.delivery.models import DUE_STATUSES, SENDING, Attempt, InboxTask, Message, status_in
from crm_notifications.delivery.receipts import apply_receipt

router = APIRouter(tags=["deliveries"])


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    status: str
    detail: str | None
    at: dt.datetime


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    contact_id: str | None
    rule_name: str | None
    template_key: str
    template_version: int | None
    channel: str
    address: str | None
    language: str
    category: str
    urgency: str
    status: str
    reason: str | None
    subject: str | None
    item_count: int
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    log: list[AttemptOut] = []


class InboxTaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    assignee: str
    customer_id: str
    title: str
    body: str
    created_at: dt.datetime
    done_at: dt.datetime | None


async def _with_log(session, messages) -> list[DeliveryOut]:
    ids = [m.id for m in messages]
    logs: dict[str, list] = {i: [] for i in ids}
    if ids:
        for row in (await session.scalars(select(Attempt).where(Attempt.message_id.in_(ids)).order_by(Attempt.id))).all():
            logs[row.message_id].append(AttemptOut.model_validate(row))
    return [DeliveryOut.model_validate(m).model_copy(update={"log": logs[m.id]}) for m in messages]


@router.get("/deliveries", response_model=list[DeliveryOut])
async def deliveries(request: Request, customer_id: str = Query(min_length=1), status: str | None = None,
                     limit: int = Query(default=100, ge=1, le=1000)):
    """Every message to the customer's contacts, newest first, with its full attempt log."""
    async with runtime_of(request).db.sessions() as session:
        query = select(Message).where(Message.customer_id == customer_id)
        if status:
            query = query.where(Message.status == status)
        messages = (await session.scalars(query.order_by(Message.created_at.desc(), Message.id).limit(limit))).all()
        return await _with_log(session, messages)


@router.get("/deliveries/{message_id}", response_model=DeliveryOut)
async def delivery(message_id: str, request: Request):
    async with runtime_of(request).db.sessions() as session:
        message = await session.get(Message, message_id)
        if message is None:
            raise Problem(404, "Delivery not found", f"No delivery {message_id}.")
        return (await _with_log(session, [message]))[0]


class ReceiptIn(Input):
    status: Literal["delivered", "failed"]
    detail: str | None = Field(default=None, max_length=1000)


@router.post("/deliveries/{message_id}/receipt", response_model=DeliveryOut)
async def receipt(message_id: str, data: ReceiptIn, request: Request, authorization: str | None = Header(default=None)):
    """Provider callback (delivery report or bounce). Authenticated with NOTIFICATIONS_PROVIDER_TOKEN as a bearer token."""
    runtime = runtime_of(request)
    token = revealed(runtime.settings.provider_token)
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise Problem(403, "Forbidden", "A valid provider token is required.")
    async with runtime.transaction() as session:
        message = await apply_receipt(session, message_id, data.status, data.detail, runtime.clock.now())
        return (await _with_log(session, [message]))[0]


def _own_inbox(request: Request) -> str | None:
    """An account manager's inbox is their own (assignee = their subject, as the profile's account_manager names them);
    staff read anyone's. Restricted callers never learn of another assignee's tasks."""
    role, subject = request.headers.get("X-Actor-Role"), request.headers.get("X-Actor-Id")
    if role == "account_manager":
        if not subject:
            raise Problem(401, "Actor required", "X-Actor-Id is required (set by the gateway).")
        return subject
    if role in ("customer", "tms"):
        raise Problem(403, "Forbidden", "The inbox is for account managers and staff.")
    return None


@router.post("/inbox/{task_id}/done", response_model=InboxTaskOut)
async def inbox_done(task_id: str, request: Request):
    runtime = runtime_of(request)
    owner = _own_inbox(request)
    async with runtime.transaction() as session:
        task = await session.get(InboxTask, task_id)
        if task is None or (owner is not None and task.assignee != owner):
            raise Problem(404, "Task not found", f"No inbox task {task_id}.")
        if task.done_at is None:
            task.done_at = runtime.clock.now()
        return InboxTaskOut.model_validate(task)


@router.get("/inbox", response_model=list[InboxTaskOut])
async def inbox(request: Request, assignee: Annotated[str | None, Query(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$",
                                                                         description="Whose tasks (staff); an account manager always gets their own.")] = None,
                open_only: bool = True):
    owner = _own_inbox(request)
    if owner is not None:
        if assignee not in (None, owner):
            raise Problem(403, "Forbidden", "An account manager reads only their own inbox.")
        assignee = owner
    if assignee is None:
        raise Problem(422, "Validation failed", "assignee is required.", type_="urn:crm:problem:validation",
                      errors=[{"loc": ["query", "assignee"], "msg": "Field required", "type": "missing"}])
    async with runtime_of(request).db.sessions() as session:
        query = select(InboxTask).where(InboxTask.assignee == assignee)
        if open_only:
            query = query.where(InboxTask.done_at.is_(None))
        return (await session.scalars(query.order_by(InboxTask.created_at.desc()))).all()


@router.get("/reports/notifications")
async def report(request: Request, days: int = Query(default=30, ge=1, le=366)):
    """Notification statistics for the dashboard: messages by status, channel and rule, suppression reasons."""
    runtime = runtime_of(request)
    since = runtime.clock.now() - dt.timedelta(days=days)
    async with runtime.db.sessions() as session:
        recent = Message.created_at >= since

        async def grouped(*columns):
            rows = await session.execute(select(*columns, func.count()).where(recent).group_by(*columns))
            return rows.all()

        by_status = {status: count for status, count in await grouped(Message.status)}
        by_channel: dict[str, dict[str, int]] = {}
        for channel, status, count in await grouped(Message.channel, Message.status):
            by_channel.setdefault(channel, {})[status] = count
        by_rule: dict[str, dict[str, int]] = {}
        for rule, status, count in await grouped(Message.rule_name, Message.status):
            by_rule.setdefault(rule or "-", {})[status] = count
        suppressed = {
            reason or "-": count
            for reason, count in (
                await session.execute(
                    select(Message.reason, func.count()).where(recent, Message.status == "suppressed").group_by(Message.reason)
                )
            ).all()
        }
        # written as the two partial indexes' predicates, so the count reads them rather than the table
        backlog = await session.scalar(select(func.count()).where(
            or_(status_in(Message.status, DUE_STATUSES), status_in(Message.status, (SENDING,)))))
    return {"since": since, "days": days, "total": sum(by_status.values()), "by_status": by_status, "by_channel": by_channel,
            "by_rule": by_rule, "suppressed_by_reason": suppressed, "backlog": int(backlog or 0)}
