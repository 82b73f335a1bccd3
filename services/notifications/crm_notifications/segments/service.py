"""Manual sends to a segment (e.g. every A-class customer): a dry run counts, the real send must
quote that count, so nobody mails a thousand customers by accident."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.events.bounds import NonNegativeInt32
from crm_common.inputs import Input
from crm_notifications import catalog
from crm_notifications.delivery.pipeline import Recipient, Spec, Trigger, enqueue_many, variables
from crm_notifications.directory import service as directory
from crm_notifications.directory.models import CustomerRecord
from crm_notifications.preferences.policy import SEND, choose_channel, consent_decision
from crm_notifications.segments.models import SegmentSend
from crm_notifications.templates import service as templates
from crm_notifications.templates.service import invalid


class RecipientCountChanged(ValueError):
    """A send whose expected_recipients is not the audience's count now (no dry run, or the audience changed)."""

    def __init__(self, recipients: int, expected: int | None):
        super().__init__("Run a dry run first and send with its count as expected_recipients.")
        self.recipients, self.expected = recipients, expected


class Segment(Input):
    abc_class: Literal["A", "B", "C", "D"] | None = None
    tier: Literal["key_account", "ordinary", "small", "at_risk"] | None = None
    status: Literal["prospect", "active", "dormant", "lost"] | None = None


class SegmentSendIn(Input):
    segment: Segment
    template_key: str = Field(min_length=1, max_length=100)
    channel: Literal["email", "sms", "push", "webhook", "preferred"] = "email"
    category: str = "marketing"
    dry_run: bool = True
    expected_recipients: NonNegativeInt32 | None = Field(default=None, description="The dry run's count; required to send.")


class SegmentSendOut(BaseModel):
    id: str | None
    dry_run: bool
    customers: int
    recipients: int
    suppressed: dict[str, int]
    queued: int = 0


async def _validate(session: AsyncSession, data: SegmentSendIn) -> None:
    errors = []
    if not any(data.segment.model_dump().values()):
        errors.append({"loc": ["body", "segment"], "msg": "a segment needs at least one criterion", "type": "empty_segment"})
    if data.category not in catalog.CATEGORIES or catalog.category_kind(data.category) == "internal":
        errors.append({"loc": ["body", "category"], "msg": f"unknown category {data.category!r}", "type": "unknown_category"})
    if not await templates.exists(session, data.template_key):
        errors.append({"loc": ["body", "template_key"], "msg": f"no template {data.template_key!r}", "type": "unknown_template"})
    else:
        missing = sorted(await templates.declared_variables(session, data.template_key) - catalog.trigger_variables("SegmentSend"))
        if missing:
            errors.append(
                {"loc": ["body", "template_key"], "msg": f"a segment send cannot provide {missing}", "type": "template_variables"}
            )
    if errors:
        raise invalid(errors, "; ".join(e["msg"] for e in errors))


async def _audience(session: AsyncSession, data: SegmentSendIn):
    query = select(CustomerRecord).where(CustomerRecord.erased.is_(False), CustomerRecord.merged_into.is_(None))
    for field, value in data.segment.model_dump().items():
        if value is not None:
            query = query.where(getattr(CustomerRecord, field) == value)
    customers = (await session.scalars(query.order_by(CustomerRecord.customer_id))).all()
    eligible: list[tuple[CustomerRecord, Recipient]] = []
    suppressed: dict[str, int] = {}
    contacts = await directory.contacts_of_many(session, [customer.customer_id for customer in customers])
    views = await directory.contact_views(session, [row for rows in contacts.values() for row in rows if not row.erased])
    for customer in customers:
        for row in contacts.get(customer.customer_id, []):
            if row.erased:
                continue
            view = views[row.contact_id]
            decision = consent_decision(view, data.category)
            reason = decision.reason if decision.action != SEND else None
            if reason is None and choose_channel(view, data.channel, data.category) is None:
                reason = f"no address for channel {data.channel}"
            if reason:
                suppressed[reason] = suppressed.get(reason, 0) + 1
            else:
                eligible.append((customer, Recipient(row.contact_id, view, row.name)))
    return customers, eligible, suppressed


async def segment_send(session: AsyncSession, data: SegmentSendIn, now: dt.datetime) -> SegmentSendOut:
    await _validate(session, data)
    customers, eligible, suppressed = await _audience(session, data)
    if data.dry_run:
        return SegmentSendOut(id=None, dry_run=True, customers=len(customers), recipients=len(eligible), suppressed=suppressed)
    if data.expected_recipients is None or data.expected_recipients != len(eligible):
        raise RecipientCountChanged(len(eligible), data.expected_recipients)
    send_id = str(uuid.uuid4())
    session.add(
        SegmentSend(
            id=send_id,
            segment=data.segment.model_dump(exclude_none=True),
            template_key=data.template_key,
            channel=data.channel,
            category=data.category,
            recipients=len(eligible),
            created_at=now,
        )
    )
    spec = Spec(send_id, "segment-send", data.template_key, "customer_contacts", data.channel, data.category)
    segment = data.segment.model_dump(exclude_none=True)
    entries = []
    for customer, recipient in eligible:
        trigger = Trigger(
            send_id,
            "SegmentSend",
            customer.customer_id,
            {"customer_id": customer.customer_id, "segment_send_id": send_id, "segment": segment},
        )
        entries.append((trigger, recipient, variables(trigger, customer, recipient, survey_base_url="")))
    queued = await enqueue_many(session, spec, entries, now)
    return SegmentSendOut(
        id=send_id, dry_run=False, customers=len(customers), recipients=len(eligible), suppressed=suppressed, queued=queued
    )
