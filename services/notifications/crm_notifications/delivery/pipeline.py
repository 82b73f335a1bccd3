"""From a trigger (an event, a scan, a segment send) to queued messages, in the caller's transaction.

One logical notification per (event id, rule, recipient): the row is inserted with ON CONFLICT DO
NOTHING, so a redelivered event, a replayed scan or a restart finds it already there and adds nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.tracing import current_traceparent
from crm_notifications import catalog, reasons
from crm_notifications.delivery.models import COLLECTING, DEFERRED, QUEUED, SUPPRESSED, Attempt, Message, Notification, status_in
from crm_notifications.directory import erasure
from crm_notifications.directory import service as directory
from crm_notifications.directory.models import ContactRecord, CustomerRecord
from crm_notifications.preferences.policy import ContactView, choose_channel
from crm_notifications.rules import service as rules
from crm_notifications.rules.conditions import lookup, matches
from crm_notifications.rules.models import Rule

log = logging.getLogger(__name__)

WAITING_FOR_CONTACT = reasons.WAITING_FOR_CONTACT


@dataclass(frozen=True)
class Spec:
    """What a rule (or a manual segment send) asks for."""

    rule_id: str
    rule_name: str
    template_key: str
    audience: str
    channel: str
    category: str
    urgency: str = "normal"
    digest_window_s: int | None = None
    digest_key: str | None = None

    @classmethod
    def of(cls, rule: Rule) -> Spec:
        return cls(
            rule.id,
            rule.name,
            rule.template_key,
            rule.audience,
            rule.channel,
            rule.category,
            rule.urgency,
            rule.digest_window_s,
            rule.digest_key,
        )


@dataclass(frozen=True)
class Recipient:
    key: str  # part of the idempotency triple: contact id, "reporter:<address>", "staff:<name>"
    view: ContactView
    name: str | None = None
    internal_address: str | None = None  # inbox assignee
    unresolved: bool = False  # a contact id we have not heard of yet (its CustomerRegistered may still be on its way)


@dataclass(frozen=True)
class Trigger:
    event_id: str
    event_type: str
    customer_id: str
    payload: dict[str, Any]
    occurred_at: dt.datetime | None = None  # the event's time; scans and segment sends happen when they run
    traceparent: str | None = None  # tracing on: the event's trace (crm_common.consumer.Event.traceparent)

    def occurred(self, now: dt.datetime) -> dt.datetime:
        return self.occurred_at or now


def unsubscribe_token(secret: str, contact_id: str, category: str) -> str:
    mac = hmac.new(secret.encode(), f"{contact_id}|{category}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{contact_id}.{category}.{mac}"


def check_unsubscribe_token(secret: str, token: str) -> tuple[str, str] | None:
    try:
        contact_id, category, mac = token.rsplit(".", 2)
    except ValueError:
        return None
    expected = unsubscribe_token(secret, contact_id, category)
    return (contact_id, category) if hmac.compare_digest(expected, token) else None


async def recipients(session: AsyncSession, spec: Spec, trigger: Trigger, customer: CustomerRecord | None) -> list[Recipient]:
    payload = trigger.payload
    if spec.audience == "account_manager":
        manager = customer.account_manager if customer else None
        return [Recipient(f"staff:{manager}", ContactView(None, addresses={"inbox": manager}), manager, manager)] if manager else []
    if spec.audience == "finance":
        return [
            Recipient(
                f"staff:{catalog.FINANCE_INBOX}",
                ContactView(None, addresses={"inbox": catalog.FINANCE_INBOX}),
                "Finance",
                catalog.FINANCE_INBOX,
            )
        ]
    if spec.audience == "escalation_owner":
        owner = payload.get("escalated_to") or (customer.account_manager if customer else None)
        return [Recipient(f"staff:{owner}", ContactView(None, addresses={"inbox": owner}), owner, owner)] if owner else []
    if spec.audience == "event_contact":
        contact_id = payload.get("contact_id")
        if contact_id:
            row = await session.get(ContactRecord, contact_id)
            if row is not None and row.erased:
                return []  # never contacted again
            if row is not None:
                return [Recipient(row.contact_id, await directory.contact_view(session, row, bool(customer and customer.erased)), row.name)]
        addresses = {}
        if payload.get("reporter_email"):
            addresses["email"] = payload["reporter_email"]
        if payload.get("reporter_phone"):
            addresses["sms"] = payload["reporter_phone"]
        if erasure.ERASED_TEXT in (payload.get("reporter_email"), payload.get("reporter_phone")):
            return []  # the reporter is a person who was erased (see process_trigger): never contacted again
        if addresses:
            key = "reporter:" + (addresses.get("email") or addresses["sms"]).lower()
            view = ContactView(
                None, language=payload.get("language") or "zh-CN", addresses=addresses, erased=bool(customer and customer.erased)
            )
            return [Recipient(key, view, payload.get("reporter_name"))]
        if contact_id:
            # events on different topics are not ordered: wait for the contact's details instead of dropping it
            return [Recipient(contact_id, ContactView(contact_id, language=payload.get("language") or "zh-CN"), unresolved=True)]
        # nobody named: fall through to the customer's contacts
    rows = [row for row in await directory.contacts_of(session, trigger.customer_id) if not row.erased]
    views = await directory.contact_views(session, rows)
    erased_customer = bool(customer and customer.erased)
    return [
        Recipient(
            row.contact_id, dataclasses.replace(views[row.contact_id], erased=True) if erased_customer else views[row.contact_id], row.name
        )
        for row in rows
    ]


def variables(trigger: Trigger, customer: CustomerRecord | None, recipient: Recipient, *, survey_base_url: str) -> dict[str, Any]:
    values = dict(trigger.payload)
    values.update(
        customer_id=trigger.customer_id,
        customer_name=(customer.name if customer else None) or trigger.customer_id,
        contact_name=recipient.name or "",
        account_manager=(customer.account_manager if customer else None) or "",
        language=recipient.view.language,
        event_type=trigger.event_type,
    )
    if not values.get("survey_url"):
        reference = trigger.payload.get("complaint_id") or trigger.event_id
        values["survey_url"] = f"{survey_base_url.rstrip('/')}/{reference}"
    return values


def _insert_ignore(session: AsyncSession, values: dict):
    dialect = session.bind.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(Notification).values(**values).on_conflict_do_nothing(index_elements=["event_id", "rule_id", "recipient_key"])


async def enqueue(
    session: AsyncSession,
    spec: Spec,
    trigger: Trigger,
    recipient: Recipient,
    values: dict[str, Any],
    now: dt.datetime,
    *,
    unresolved_retry_s: float = 30.0,
) -> Message | None:
    """Record the notification (once) and put it on a message: a new one, or the open digest."""
    message_id = str(uuid.uuid4())
    notification_id = str(uuid.uuid4())
    result = await session.execute(
        _insert_ignore(
            session,
            dict(
                id=notification_id,
                event_id=trigger.event_id,
                event_type=trigger.event_type,
                rule_id=spec.rule_id,
                recipient_key=recipient.key,
                customer_id=trigger.customer_id,
                contact_id=recipient.view.contact_id,
                variables=values,
                message_id=message_id,
                created_at=now,
            ),
        )
    )
    if result.rowcount == 0:
        return None  # this event already produced this notification
    digest = spec.digest_window_s is not None and spec.urgency != "critical"
    group = None
    if digest:
        group_value = lookup(trigger.payload | {"customer_id": trigger.customer_id}, spec.digest_key or "customer_id")
        group = f"{spec.rule_id}|{recipient.key}|{group_value}"
        open_id = await session.scalar(select(Message.id).where(Message.digest_group == group, _digest_open(now)))
        if open_id is not None:
            occurred = trigger.occurred(now)
            joined = await session.execute(
                update(Message)
                .where(Message.id == open_id, _digest_open(now))
                .values(
                    item_count=Message.item_count + 1,
                    updated_at=now,
                    occurred_at=case((Message.occurred_at > occurred, occurred), else_=Message.occurred_at),
                )
            )
            if joined.rowcount:
                await session.execute(update(Notification).where(Notification.id == notification_id).values(message_id=open_id))
                session.add(
                    Attempt(
                        message_id=open_id,
                        customer_id=trigger.customer_id,
                        status=COLLECTING,
                        detail=f"{trigger.event_type} {trigger.event_id} joined the digest",
                        at=now,
                    )
                )
                return await session.get(Message, open_id)
    channel, address, status, reason, next_attempt_at = _initial_state(spec, recipient, digest, now, unresolved_retry_s)
    message = Message(
        id=message_id,
        customer_id=trigger.customer_id,
        contact_id=recipient.view.contact_id,
        recipient_key=recipient.key,
        rule_id=spec.rule_id,
        rule_name=spec.rule_name,
        template_key=spec.template_key,
        channel=channel or spec.channel,
        address=address,
        language=recipient.view.language,
        category=spec.category,
        urgency=spec.urgency,
        priority=catalog.PRIORITY[spec.urgency],
        occurred_at=trigger.occurred(now),
        status=status,
        reason=reason,
        **reasons.columns(reason),
        digest_group=group,
        item_count=1,
        attempts=0,
        next_attempt_at=next_attempt_at,
        created_at=now,
        updated_at=now,
        traceparent=trigger.traceparent or current_traceparent(),
    )
    session.add(message)
    await session.flush()  # the message row first: the log references it
    session.add(Attempt(message_id=message_id, customer_id=trigger.customer_id, status=status, at=now, **_first_log(spec, trigger, reason)))
    await session.flush()
    return message


def _digest_open(now: dt.datetime):
    """A digest takes events during its window [opened, opened + digest_window_s) (the close is its next_attempt_at),
    however late the dispatcher comes for it: a later event opens the next digest of the group."""
    return and_(status_in(Message.status, (COLLECTING,)), Message.next_attempt_at > now)


def _first_log(spec: Spec, trigger, reason: str | None) -> dict:
    """The detail of a message's first log row: why it is held back, or which rule and event made it."""
    return {"detail": reason or f"{spec.rule_name}: {trigger.event_type} {trigger.event_id}", **reasons.columns(reason, "detail")}


def _initial_state(spec: Spec, recipient: Recipient, digest: bool, now: dt.datetime, unresolved_retry_s: float):
    """(channel, address, status, reason, next attempt) of a new message."""
    channel = "inbox" if recipient.internal_address else choose_channel(recipient.view, spec.channel, spec.category)
    address = recipient.internal_address if channel == "inbox" else (recipient.view.addresses.get(channel) if channel else None)
    status, reason = (COLLECTING if digest else QUEUED), None
    next_attempt_at = now + dt.timedelta(seconds=spec.digest_window_s) if digest else now
    if recipient.view.erased:
        status, reason = SUPPRESSED, reasons.ERASED
    elif recipient.unresolved:
        status, reason, channel = DEFERRED, WAITING_FOR_CONTACT, spec.channel
        next_attempt_at = now + dt.timedelta(seconds=unresolved_retry_s)
    elif channel is None:
        status, reason = SUPPRESSED, reasons.Reason("delivery.no_address", channel=spec.channel)
    return channel or spec.channel, address, status, reason, next_attempt_at


async def enqueue_many(
    session: AsyncSession,
    spec: Spec,
    entries: list[tuple[Trigger, Recipient, dict[str, Any]]],
    now: dt.datetime,
    *,
    unresolved_retry_s: float = 30.0,
    chunk: int = 500,
) -> int:
    """`enqueue` for many recipients of one spec in three multi-row inserts per chunk (notifications, messages, logs)
    instead of three statements each. Same guarantees: a notification that exists already adds nothing. Returns how
    many messages were created. Digests join open messages one by one, so they take the single path."""
    if spec.digest_window_s is not None and spec.urgency != "critical":
        return sum([await enqueue(session, spec, t, r, v, now, unresolved_retry_s=unresolved_retry_s) is not None for t, r, v in entries])
    created = 0
    module = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    traceparent = current_traceparent()  # a segment send's request, where tracing is on
    for start in range(0, len(entries), chunk):
        planned = {}
        notifications = []
        for trigger, recipient, values in entries[start : start + chunk]:
            message_id = str(uuid.uuid4())
            planned[message_id] = (trigger, recipient)
            notifications.append(
                dict(
                    id=str(uuid.uuid4()),
                    event_id=trigger.event_id,
                    event_type=trigger.event_type,
                    rule_id=spec.rule_id,
                    recipient_key=recipient.key,
                    customer_id=trigger.customer_id,
                    contact_id=recipient.view.contact_id,
                    variables=values,
                    message_id=message_id,
                    created_at=now,
                )
            )
        table = Notification.__table__
        inserted = (
            (
                await session.execute(
                    module.insert(table)
                    .values(notifications)
                    .on_conflict_do_nothing(index_elements=["event_id", "rule_id", "recipient_key"])
                    .returning(table.c.message_id)
                )
            )
            .scalars()
            .all()
        )
        if not inserted:
            continue
        messages, logs = [], []
        for message_id in inserted:
            trigger, recipient = planned[message_id]
            channel, address, status, reason, next_attempt_at = _initial_state(spec, recipient, False, now, unresolved_retry_s)
            messages.append(
                dict(
                    id=message_id,
                    customer_id=trigger.customer_id,
                    contact_id=recipient.view.contact_id,
                    recipient_key=recipient.key,
                    rule_id=spec.rule_id,
                    rule_name=spec.rule_name,
                    template_key=spec.template_key,
                    template_version=None,
                    channel=channel,
                    address=address,
                    language=recipient.view.language,
                    category=spec.category,
                    urgency=spec.urgency,
                    priority=catalog.PRIORITY[spec.urgency],
                    occurred_at=trigger.occurred(now),
                    status=status,
                    reason=reason,
                    **reasons.columns(reason),
                    subject=None,
                    body=None,
                    digest_group=None,
                    item_count=1,
                    attempts=0,
                    next_attempt_at=next_attempt_at,
                    lease_until=None,
                    last_error=None,
                    provider_id=None,
                    created_at=now,
                    updated_at=now,
                    sent_at=None,
                    traceparent=trigger.traceparent or traceparent,
                )
            )
            logs.append(
                dict(
                    message_id=message_id,
                    customer_id=trigger.customer_id,
                    attempt=0,
                    status=status,
                    at=now,
                    **_first_log(spec, trigger, reason),
                )
            )
        await session.execute(insert(Message.__table__), messages)
        await session.execute(insert(Attempt.__table__), logs)
        created += len(messages)
    return created


async def process_trigger(
    session: AsyncSession,
    trigger: Trigger,
    now: dt.datetime,
    *,
    survey_base_url: str = "",
    unresolved_retry_s: float = 30.0,
    erasure_secret: str | None = None,
) -> list[Message]:
    """Run every matching rule for the trigger; returns the messages created or joined.

    Event callers pass `erasure_secret` (settings) so reporters who were erased are recognised by address.
    """
    customer = await directory.customer(session, trigger.customer_id)
    if customer is not None and customer.customer_id != trigger.customer_id:
        trigger = dataclasses.replace(trigger, customer_id=customer.customer_id)
    if customer is not None and customer.erased:
        log.info("customer %s is erased; %s not notified", trigger.customer_id, trigger.event_type)
        return []
    forgotten = await erasure.forget_erased_reporter(session, trigger.payload, erasure_secret)
    if forgotten is not trigger.payload:  # an event still in flight names an erased person: their details go nowhere
        trigger = dataclasses.replace(trigger, payload=forgotten)
    context = dict(trigger.payload)
    context["customer"] = {
        "tier": customer.tier if customer else None,
        "abc_class": customer.abc_class if customer else None,
        "status": customer.status if customer else None,
        "account_manager": customer.account_manager if customer else None,
    }
    produced: list[Message] = []
    for rule in await rules.matching(session, trigger.event_type):
        if not matches(rule.conditions, context):
            continue
        spec = Spec.of(rule)
        for recipient in await recipients(session, spec, trigger, customer):
            values = variables(trigger, customer, recipient, survey_base_url=survey_base_url)
            message = await enqueue(session, spec, trigger, recipient, values, now, unresolved_retry_s=unresolved_retry_s)
            if message is not None:
                produced.append(message)
    return produced


# An event that reports an occasion rather than a happening: whoever reports the same occasion again (a billing
# system's daily run, a re-seeded demo, a replay with new ids) gets the same trigger id, so the occasion's
# (trigger, rule, recipient) key lets it out once, like the renewal and win-back scans' ids.
OCCASION_FIELDS = {"PaymentOverdue": ("customer_id", "invoice_id", "due_date")}
OCCASION_NAMESPACE = uuid.UUID("0b7e4f1c-2a9d-4e36-8c55-9d1f3a6b2e47")


def trigger_id(envelope, data: dict[str, Any]) -> str:
    fields = OCCASION_FIELDS.get(envelope.type)
    if fields is None:
        return str(envelope.event_id)
    occasion = "|".join(str(data[name]) for name in fields)
    return f"occasion:{uuid.uuid5(OCCASION_NAMESPACE, f'{envelope.type}|{occasion}')}"


def trigger_from_event(envelope, payload, traceparent: str | None = None) -> Trigger:
    data = payload.model_dump(mode="json")
    customer_id = data.get("customer_id") or data.get("survivor_id") or envelope.key
    occurred = envelope.occurred_at
    if occurred.tzinfo is None:  # the envelope does not insist on an offset: read a naive time as UTC
        occurred = occurred.replace(tzinfo=dt.UTC)
    return Trigger(trigger_id(envelope, data), envelope.type, customer_id, data, occurred, traceparent)


def capped_categories() -> list[str]:
    return [name for name, (kind, _default) in catalog.CATEGORIES.items() if kind in ("service", "marketing")]
