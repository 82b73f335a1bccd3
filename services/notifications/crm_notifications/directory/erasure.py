"""CustomerErased: forget the person, keep the delivery log meaningful.

What the person owned (messages to their contact id, or to their address as a complaint reporter) is
suppressed if still pending and anonymised: address, subject, body, errors, notification variables and
attempt details go; ids, statuses, timestamps, attempt counts and item counts stay. Recipient keys
(part of the (event, rule, recipient) idempotency key) become non-PII values: the contact id stays
(it is an opaque id), a reporter's "reporter:<address>" becomes "erased:<contact or customer id>".

Other rows of the same customer (a colleague's notification about the person's complaint, an account
manager's inbox task, attempt details, our not-yet-relayed and relayed outbox events) keep existing but
the person's name, email and phone are cut out of their text.

The person's addresses are remembered only as keyed hashes (`nf_erased_addresses`, HMAC-SHA256 with
NOTIFICATIONS_ERASURE_SECRET), so an event still in flight that names them as a reporter produces nothing and a
queued message to them is suppressed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.contacts import email_key, phone_key
from crm_common.events.customers import CustomerErased
from crm_common.outbox import outbox_table
from crm_notifications import reasons
from crm_notifications.delivery.models import DUE_STATUSES, SENDING, SUPPRESSED, Attempt, InboxTask, Message, Notification
from crm_notifications.directory.models import ContactRecord, CustomerRecord, ErasedAddress
from crm_notifications.preferences.models import ContactAddress, Preference

ERASED_TEXT = "[erased]"
ERASED_REASON = reasons.ERASED


# --- addresses -------------------------------------------------------------------------------------------------


def normalize_address(address: str | None) -> str | None:
    """The form an address is hashed in: an email as crm_common.contacts keys it; a phone number as the digits of its
    contact key, a Chinese number without its country code (the form hashes were first stored in); anything else stripped."""
    if not address:
        return None
    text = address.strip()
    if "@" in text:
        return email_key(text)
    digits = re.sub(r"\D", "", text)
    if digits and len(digits) >= 6 and re.fullmatch(r"[\d\s\-+().]+", text):
        key = phone_key(text) or digits
        return key.removeprefix("+86") if key.startswith("+86") else key.lstrip("+")
    return text


def address_hash(address: str | None, secret: str) -> str | None:
    """HMAC-SHA256 of the normalised address, keyed with NOTIFICATIONS_ERASURE_SECRET (a plain hash of an email or
    phone number could be reversed by trying candidates)."""
    normalized = normalize_address(address)
    if not normalized:
        return None
    return hmac.new(secret.encode(), b"erased-address|" + normalized.encode(), hashlib.sha256).hexdigest()


async def is_erased_address(session: AsyncSession, secret: str, *addresses: str | None) -> bool:
    hashes = [h for h in (address_hash(a, secret) for a in addresses) if h]
    if not hashes:
        return False
    return await session.scalar(select(func.count()).where(ErasedAddress.address_hash.in_(hashes))) > 0


REPORTER_FIELDS = ("reporter_name", "reporter_email", "reporter_phone")


async def forget_erased_reporter(session: AsyncSession, payload: dict[str, Any], secret: str | None) -> dict[str, Any]:
    """The payload with the reporter's details replaced by ERASED_TEXT when the reporter is an erased person
    (their email or phone is a remembered hash, or the event names an erased contact); else the same object.
    Without `secret` (internal triggers: scans, segment sends, which carry no reporter) only the contact id is checked."""
    if not any(payload.get(name) for name in REPORTER_FIELDS):
        return payload
    erased = secret is not None and await is_erased_address(session, secret, payload.get("reporter_email"), payload.get("reporter_phone"))
    if not erased and payload.get("contact_id"):
        contact = await session.get(ContactRecord, payload["contact_id"])
        erased = bool(contact is not None and contact.erased)
    if not erased:
        return payload
    return payload | {name: ERASED_TEXT for name in REPORTER_FIELDS if payload.get(name)}


async def _remember(session: AsyncSession, addresses: Iterable[str], now: dt.datetime, secret: str) -> None:
    hashes = sorted({h for h in (address_hash(a, secret) for a in addresses) if h})
    if not hashes:
        return
    module = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    await session.execute(
        module.insert(ErasedAddress)
        .values([{"address_hash": h, "erased_at": now} for h in hashes])
        .on_conflict_do_nothing(index_elements=["address_hash"])
    )


# --- scrubbing text ---------------------------------------------------------------------------------------------


class Scrubber:
    """Cuts a person's identifiers out of text: names and emails case-insensitively, phones in any formatting."""

    def __init__(
        self, names: Iterable[str | None], emails: Iterable[str | None], phones: Iterable[str | None], others: Iterable[str | None] = ()
    ):
        patterns: list[str] = []
        self.needles: list[str] = []  # lower-case literals for a cheap SQL pre-filter
        for value in [*names, *emails, *others]:
            value = (value or "").strip()
            if len(value) >= 2:
                patterns.append(re.escape(value))
                self.needles.append(value.lower())
        for phone in phones:
            digits = normalize_address(phone) or ""
            digits = re.sub(r"\D", "", digits)
            if len(digits) >= 6:
                patterns.append(r"(?:(?:\+|00)?86[\s\-.()]*)?(?:\((?=[\d\s\-.]*\)))?" + r"[\s\-.()]*".join(digits))
                self.needles.append(digits[-4:])  # any formatting keeps the last four digits together
        self.pattern = re.compile("|".join(sorted(patterns, key=len, reverse=True)), re.IGNORECASE) if patterns else None

    def __bool__(self) -> bool:
        return self.pattern is not None

    def text(self, value: str | None) -> str | None:
        if value is None or self.pattern is None or not isinstance(value, str):
            return value
        return self.pattern.sub(ERASED_TEXT, value)

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.data(item) for item in value]
        return value

    def maybe_in(self, column):
        """SQL pre-filter: rows whose text could hold an identifier (the regex decides)."""
        lowered = func.lower(column)
        return or_(*(lowered.like(f"%{needle}%") for needle in self.needles))


# --- the erasure ------------------------------------------------------------------------------------------------


async def _related_customers(session: AsyncSession, customer_id: str) -> list[str]:
    """The customer and every customer merged into it (their messages kept their old customer id)."""
    ids = {customer_id}
    frontier = [customer_id]
    while frontier:
        merged = (await session.scalars(select(CustomerRecord.customer_id).where(CustomerRecord.merged_into.in_(frontier)))).all()
        frontier = [m for m in merged if m not in ids]
        ids.update(frontier)
    return sorted(ids)


async def apply_erased(session: AsyncSession, erased: CustomerErased, now: dt.datetime, *, secret: str) -> int:
    """Never contact them again and anonymise what we logged. Returns the number of messages anonymised."""
    customer_ids = await _related_customers(session, erased.customer_id)
    names: list[str | None] = []
    if erased.contact_id:
        contacts = [row for row in [await session.get(ContactRecord, erased.contact_id)] if row is not None]
        if not contacts:
            session.add(ContactRecord(contact_id=erased.contact_id, customer_id=erased.customer_id, erased=True, updated_at=now))
        contact_ids = [erased.contact_id]
    else:
        record = await session.get(CustomerRecord, erased.customer_id)
        if record is None:
            record = CustomerRecord(customer_id=erased.customer_id, erased=False, updated_at=now)
            session.add(record)
        names.append(record.name)  # an individual customer's name is the person's name
        record.erased = True
        record.name = None
        record.account_manager = None
        record.updated_at = now
        contacts = list((await session.scalars(select(ContactRecord).where(ContactRecord.customer_id.in_(customer_ids)))).all())
        contact_ids = [row.contact_id for row in contacts]

    # what we know of the person, read before it is wiped
    extra = list((await session.scalars(select(ContactAddress.address).where(ContactAddress.contact_id.in_(contact_ids)))).all())
    names += [row.name for row in contacts]
    emails = [row.email for row in contacts]
    phones = [row.phone for row in contacts]
    scrub = Scrubber(names, emails, phones, extra)
    addresses = [a for a in [*emails, *phones, *extra] if a]

    await session.execute(
        update(ContactRecord)
        .where(ContactRecord.contact_id.in_(contact_ids))
        .values(
            erased=True,
            name=None,
            role=None,
            email=None,
            phone=None,
            quiet_hours_start=None,
            quiet_hours_end=None,
            marketing_consent=False,
            updated_at=now,
        )
    )
    await session.execute(ContactAddress.__table__.delete().where(ContactAddress.contact_id.in_(contact_ids)))
    await session.execute(Preference.__table__.delete().where(Preference.contact_id.in_(contact_ids)))
    await _remember(session, addresses, now, secret)

    # the person's own messages: to their contact id, to their address as a reporter, or (whole customer) all of them
    erased_hashes = {address_hash(a, secret) for a in addresses} - {None}
    tombstone = f"erased:{erased.contact_id or erased.customer_id}"
    owned: dict[str, Message] = {}
    candidates = select(Message).where(Message.customer_id.in_(customer_ids))
    if contact_ids:
        candidates = select(Message).where(Message.customer_id.in_(customer_ids) | Message.contact_id.in_(contact_ids))
    for message in (await session.scalars(candidates)).all():
        if (
            erased.contact_id is None
            or message.contact_id in contact_ids
            or (
                message.contact_id is None
                and message.recipient_key.startswith("reporter:")
                and (
                    address_hash(message.recipient_key[len("reporter:") :], secret) in erased_hashes
                    or address_hash(message.address, secret) in erased_hashes
                )
            )
        ):
            owned[message.id] = message
    for message in owned.values():
        old_key = message.recipient_key
        new_key = message.contact_id or (tombstone if old_key.startswith("reporter:") else old_key)
        if message.status in DUE_STATUSES + (SENDING,):
            message.status, message.reason, message.lease_until = SUPPRESSED, ERASED_REASON, None
            message.reason_key, message.reason_params = ERASED_REASON.key, ERASED_REASON.params
        message.address = None
        message.subject = ERASED_TEXT
        message.body = None
        message.last_error = None
        message.reason = scrub.text(message.reason)
        message.reason_params = scrub.data(message.reason_params) if message.reason_params else message.reason_params
        message.recipient_key = new_key
        if message.digest_group:
            message.digest_group = scrub.text(message.digest_group.replace(old_key, new_key))
        message.updated_at = now
    if owned:
        ids = list(owned)
        for notification in (await session.scalars(select(Notification).where(Notification.message_id.in_(ids)))).all():
            notification.variables = {}
            if notification.recipient_key.startswith("reporter:"):
                notification.recipient_key = tombstone
        await session.execute(update(Attempt).where(Attempt.message_id.in_(ids)).values(detail=None, detail_key=None, detail_params=None))
        for message_id in ids:
            session.add(
                Attempt(
                    message_id=message_id,
                    customer_id=owned[message_id].customer_id,
                    attempt=0,
                    status=SUPPRESSED,
                    detail="contact erased; log anonymised",
                    at=now,
                )
            )
        await session.flush()

    if scrub:
        await _scrub_others(session, scrub, customer_ids, set(owned))
    await session.flush()
    return len(owned)


async def _scrub_others(session: AsyncSession, scrub: Scrubber, customer_ids: list[str], owned: set[str]) -> None:
    """The person's identifiers inside other rows: colleagues' notifications, staff inbox tasks, logs, our outbox."""
    for message in (
        await session.scalars(
            select(Message).where(
                Message.customer_id.in_(customer_ids),
                Message.id.not_in(owned) if owned else true(),
                or_(
                    scrub.maybe_in(Message.subject),
                    scrub.maybe_in(Message.body),
                    scrub.maybe_in(Message.last_error),
                    scrub.maybe_in(Message.reason),
                    scrub.maybe_in(Message.digest_group),
                ),
            )
        )
    ).all():
        message.subject, message.body = scrub.text(message.subject), scrub.text(message.body)
        message.last_error, message.reason = scrub.text(message.last_error), scrub.text(message.reason)
        message.reason_params = scrub.data(message.reason_params) if message.reason_params else message.reason_params
        message.digest_group = scrub.text(message.digest_group)
    # JSON is compared as Python data: cheap enough per customer, and independent of the dialect's JSON operators
    for notification in (await session.scalars(select(Notification).where(Notification.customer_id.in_(customer_ids)))).all():
        cleaned = scrub.data(notification.variables)
        if cleaned != notification.variables:
            notification.variables = cleaned
    for attempt in (
        await session.scalars(select(Attempt).where(Attempt.customer_id.in_(customer_ids), scrub.maybe_in(Attempt.detail)))
    ).all():
        attempt.detail = scrub.text(attempt.detail)
    for task in (
        await session.scalars(
            select(InboxTask).where(
                InboxTask.customer_id.in_(customer_ids),
                or_(scrub.maybe_in(InboxTask.title), scrub.maybe_in(InboxTask.body)),
            )
        )
    ).all():
        task.title, task.body = scrub.text(task.title), scrub.text(task.body)
    # our own events (NotificationSent/Failed: error texts): pending ones before the relay publishes them, and the
    # published copies kept for the retention period
    rows = (await session.execute(select(outbox_table.c.id, outbox_table.c.body).where(scrub.maybe_in(outbox_table.c.body)))).all()
    for row in rows:
        cleaned = scrub.text(row.body)
        if cleaned != row.body:
            await session.execute(update(outbox_table).where(outbox_table.c.id == row.id).values(body=cleaned))
