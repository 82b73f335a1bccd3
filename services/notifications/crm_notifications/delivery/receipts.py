"""Delivery receipts from SMS/push providers and bounces: `sent` becomes `delivered` or `failed`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.events.notifications import NotificationFailed
from crm_common.outbox import emit
from crm_notifications import SERVICE_NAME, reasons
from crm_notifications.delivery.models import DELIVERED, FAILED, SENT, Attempt, Message
from crm_notifications.metrics import MESSAGE_TRANSITIONS


class DeliveryNotFound(LookupError):
    pass


class ReceiptDoesNotApply(ValueError):
    """A receipt that contradicts the delivery's final state."""

    def __init__(self, detail: str, status_now: str):
        super().__init__(detail)
        self.status_now = status_now


async def apply_receipt(session: AsyncSession, message_id: str, status: str, detail: str | None, now: dt.datetime) -> Message:
    """Idempotent: the same receipt twice changes nothing; a receipt that contradicts a final state is a 409."""
    message = await session.get(Message, message_id)
    if message is None:
        raise DeliveryNotFound(f"No delivery {message_id}.")
    if message.status == status:
        return message
    allowed = {DELIVERED: (SENT,), FAILED: (SENT, DELIVERED)}[status]
    if message.status not in allowed:
        raise ReceiptDoesNotApply(f"Delivery {message_id} is {message.status}; a {status} receipt cannot change it.", message.status)
    message.status = status
    message.updated_at = now
    if status == FAILED:
        reason = reasons.Reason("delivery.receipt_failed", detail=detail or "failed")
        message.reason, message.reason_key, message.reason_params = reason, reason.key, reason.params
        await emit(
            session,
            NotificationFailed(
                notification_id=message.id,
                customer_id=message.customer_id,
                contact_id=message.contact_id,
                channel=message.channel,
                template=message.template_key,
                rule=message.rule_name,
                error=message.reason,
                attempts=message.attempts,
                failed_at=now,
            ),
            key=message.customer_id,
            producer=SERVICE_NAME,
        )
    session.add(
        Attempt(
            message_id=message.id,
            customer_id=message.customer_id,
            attempt=message.attempts,
            status=status,
            detail=f"provider receipt{': ' + detail if detail else ''}"[:2000],
            at=now,
        )
    )
    MESSAGE_TRANSITIONS.labels(message.channel, status).inc()
    await session.flush()
    return message
