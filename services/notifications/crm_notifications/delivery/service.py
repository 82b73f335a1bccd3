"""The delivery log, the in-app inbox and the notification statistics: reads and the inbox's one change.
Sending is the dispatcher's (dispatcher.py), turning events into messages the pipeline's (pipeline.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.deps import Actor
from crm_notifications.delivery.models import DUE_STATUSES, SENDING, Attempt, InboxTask, Message, status_in
from crm_notifications.delivery.receipts import DeliveryNotFound
from crm_notifications.delivery.schemas import AttemptOut, DeliveryOut


class TaskNotFound(LookupError):
    pass


class ActorRequired(PermissionError):
    """An account manager the gateway did not name."""


class InboxForbidden(PermissionError):
    pass


class AssigneeRequired(ValueError):
    """Staff read an inbox by naming its assignee."""


def inbox_owner(actor: Actor) -> str | None:
    """An account manager's inbox is their own (assignee = their id, as the profile's account_manager names them);
    staff read anyone's (None). Restricted callers never learn of another assignee's tasks."""
    if actor.role == "account_manager":
        if not actor.id:
            raise ActorRequired()
        return actor.id
    if actor.role in ("customer", "tms"):
        raise InboxForbidden("The inbox is for account managers and staff.")
    return None


def inbox_assignee(owner: str | None, requested: str | None) -> str:
    if owner is not None:
        if requested not in (None, owner):
            raise InboxForbidden("An account manager reads only their own inbox.")
        return owner
    if requested is None:
        raise AssigneeRequired()
    return requested


async def with_log(session: AsyncSession, messages) -> list[DeliveryOut]:
    ids = [m.id for m in messages]
    logs: dict[str, list] = {i: [] for i in ids}
    if ids:
        for row in (await session.scalars(select(Attempt).where(Attempt.message_id.in_(ids)).order_by(Attempt.id))).all():
            logs[row.message_id].append(AttemptOut.model_validate(row))
    return [DeliveryOut.model_validate(m).model_copy(update={"log": logs[m.id]}) for m in messages]


async def deliveries_of(session: AsyncSession, customer_id: str, status: str | None, limit: int) -> list[DeliveryOut]:
    """Every message to the customer's contacts, newest first, with its full attempt log."""
    query = select(Message).where(Message.customer_id == customer_id)
    if status:
        query = query.where(Message.status == status)
    messages = (await session.scalars(query.order_by(Message.created_at.desc(), Message.id).limit(limit))).all()
    return await with_log(session, messages)


async def delivery(session: AsyncSession, message_id: str) -> DeliveryOut:
    message = await session.get(Message, message_id)
    if message is None:
        raise DeliveryNotFound(f"No delivery {message_id}.")
    return (await with_log(session, [message]))[0]


async def complete_task(session: AsyncSession, task_id: str, owner: str | None, now: dt.datetime) -> InboxTask:
    """Idempotent: a task done already keeps its time. Another's task is not found for an account manager (`owner`)."""
    task = await session.get(InboxTask, task_id)
    if task is None or (owner is not None and task.assignee != owner):
        raise TaskNotFound(f"No inbox task {task_id}.")
    if task.done_at is None:
        task.done_at = now
    return task


async def inbox_tasks(session: AsyncSession, assignee: str, open_only: bool) -> list[InboxTask]:
    query = select(InboxTask).where(InboxTask.assignee == assignee)
    if open_only:
        query = query.where(InboxTask.done_at.is_(None))
    return list((await session.scalars(query.order_by(InboxTask.created_at.desc()))).all())


def _by_reason_key(rows) -> list[dict[str, Any]]:
    """Suppressions by reason key (reasons.py), for a reader's own message tables: [{key, text, count}], most first.
    A reason without a key (a row from before keys) is its own group, with key None and its English text."""
    groups: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for key, reason, count in rows:
        group = groups.setdefault((key, None if key else reason), {"key": key, "text": reason, "count": 0})
        group["count"] += count
    return sorted(groups.values(), key=lambda g: (-g["count"], g["key"] or "", g["text"] or ""))


async def statistics(session: AsyncSession, since: dt.datetime) -> dict[str, Any]:
    """Messages since `since` by status, channel and rule, suppression reasons, and the backlog now."""
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
    suppressed_rows = (
        await session.execute(
            select(Message.reason_key, Message.reason, func.count())
            .where(recent, Message.status == "suppressed")
            .group_by(Message.reason_key, Message.reason)
        )
    ).all()
    suppressed: dict[str, int] = {}
    for _, reason, count in suppressed_rows:
        suppressed[reason or "-"] = suppressed.get(reason or "-", 0) + count
    # written as the two partial indexes' predicates, so the count reads them rather than the table
    backlog = await session.scalar(
        select(func.count()).where(or_(status_in(Message.status, DUE_STATUSES), status_in(Message.status, (SENDING,))))
    )
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_channel": by_channel,
        "by_rule": by_rule,
        "suppressed_by_reason": suppressed,
        "suppressed_by_reason_key": _by_reason_key(suppressed_rows),
        "backlog": int(backlog or 0),
    }
