"""Keeps the local copy of customers and contacts current from customer-profile and scoring events."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator

from sqlalchemy import select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.events.customers import CustomerErased, CustomerLost, CustomerMerged, CustomerSnapshot
from crm_common.events.scoring import CustomerScored, CustomerTierChanged
from crm_notifications.directory import erasure
from crm_notifications.directory.erasure import ERASED_TEXT  # noqa: F401  (re-exported)
from crm_notifications.directory.models import ContactRecord, CustomerRecord
from crm_notifications.preferences.models import ContactAddress, Preference
from crm_notifications.preferences.policy import ContactView, PreferenceView, parse_hhmm


async def customer(session: AsyncSession, customer_id: str) -> CustomerRecord | None:
    """The customer, following merges to the survivor."""
    seen: set[str] = set()
    record = await session.get(CustomerRecord, customer_id)
    while record is not None and record.merged_into and record.merged_into not in seen:
        seen.add(record.customer_id)
        record = await session.get(CustomerRecord, record.merged_into) or record
        if record.customer_id in seen:
            break
    return record


async def _customer_row(session: AsyncSession, customer_id: str, now: dt.datetime) -> CustomerRecord:
    record = await session.get(CustomerRecord, customer_id)
    if record is None:
        record = CustomerRecord(customer_id=customer_id, erased=False, updated_at=now)
        session.add(record)
    return record


async def apply_lost(session: AsyncSession, lost: CustomerLost, now: dt.datetime) -> None:
    """The win-back scan counts its days from the moment customer-profile's win-back case says the customer was lost
    (the CustomerUpdated staged with it marked the status already, at the time this service read it)."""
    record = await _customer_row(session, lost.customer_id, now)
    if record.erased:
        return
    record.status, record.status_since, record.updated_at = "lost", lost.lost_at, now
    await session.flush()


async def apply_snapshot(session: AsyncSession, snapshot: CustomerSnapshot, now: dt.datetime) -> None:
    record = await _customer_row(session, snapshot.customer_id, now)
    if record.erased:
        return  # an erased customer stays erased, whatever a late snapshot says
    if record.status != snapshot.status:
        record.status_since = now
    record.name = snapshot.name
    record.status = snapshot.status
    record.account_manager = snapshot.account_manager
    record.contract_end = snapshot.contract_end
    record.updated_at = now
    listed = {contact.contact_id for contact in snapshot.contacts}
    await session.execute(  # contacts the profile no longer lists are not addressed as "the customer's contacts"
        update(ContactRecord)
        .where(ContactRecord.customer_id == snapshot.customer_id, ContactRecord.contact_id.not_in(listed) if listed else true())
        .values(active=False, updated_at=now)
    )
    known = await contacts_by_id(session, [contact.contact_id for contact in snapshot.contacts])  # one query, not one per contact
    for contact in snapshot.contacts:
        row = known.get(contact.contact_id)
        if row is None:
            row = known[contact.contact_id] = ContactRecord(contact_id=contact.contact_id, customer_id=snapshot.customer_id, erased=False)
            session.add(row)
        if row.erased:
            continue
        row.customer_id = snapshot.customer_id
        row.name = contact.name
        row.role = contact.role
        row.email = contact.email
        row.phone = contact.phone
        row.preferred_channel = contact.preferred_channel
        row.language = contact.language
        row.timezone = contact.timezone
        row.quiet_hours_start = contact.quiet_hours_start.strftime("%H:%M") if contact.quiet_hours_start else None
        row.quiet_hours_end = contact.quiet_hours_end.strftime("%H:%M") if contact.quiet_hours_end else None
        row.marketing_consent = contact.marketing_consent
        row.active = True
        row.updated_at = now
    await session.flush()


async def apply_scored(session: AsyncSession, scored: CustomerScored, now: dt.datetime) -> None:
    record = await _customer_row(session, scored.customer_id, now)
    if scored.abc_class is not None:
        record.abc_class = scored.abc_class
    if scored.tier is not None:
        record.tier = scored.tier
    record.updated_at = now
    await session.flush()


async def apply_tier(session: AsyncSession, changed: CustomerTierChanged, now: dt.datetime) -> None:
    record = await _customer_row(session, changed.customer_id, now)
    record.tier = changed.new_tier
    record.updated_at = now
    await session.flush()


async def apply_merged(session: AsyncSession, merged: CustomerMerged, now: dt.datetime) -> None:
    survivor = await _customer_row(session, merged.survivor_id, now)
    gone = await _customer_row(session, merged.merged_id, now)
    gone.merged_into = survivor.customer_id
    gone.updated_at = now
    await session.execute(
        update(ContactRecord).where(ContactRecord.customer_id == merged.merged_id).values(customer_id=merged.survivor_id, updated_at=now)
    )
    await session.flush()


async def apply_erased(session: AsyncSession, erased: CustomerErased, now: dt.datetime, *, secret: str) -> int:
    """Never contact them again and anonymise what we logged (see `directory.erasure`)."""
    return await erasure.apply_erased(session, erased, now, secret=secret)


async def contact_view(session: AsyncSession, contact: ContactRecord, erased_customer: bool = False) -> ContactView:
    views = await contact_views(session, [contact])
    view = views[contact.contact_id]
    return dataclasses.replace(view, erased=True) if erased_customer and not view.erased else view


# IN lists stay well under SQLite's bound-parameter limit and keep PostgreSQL plans simple
CHUNK = 500


def chunks(values: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


async def contact_views(session: AsyncSession, contacts: Iterable[ContactRecord]) -> dict[str, ContactView]:
    """Views of many contacts with one query for their addresses and one for their preferences (per chunk),
    instead of two per contact. The customer's erasure is the caller's to apply."""
    contacts = list(contacts)
    addresses: dict[str, dict[str, str]] = {c.contact_id: {} for c in contacts}
    preferences: dict[str, dict[str, PreferenceView]] = {c.contact_id: {} for c in contacts}
    for contact in contacts:
        if contact.email:
            addresses[contact.contact_id]["email"] = contact.email
        if contact.phone:
            addresses[contact.contact_id]["sms"] = contact.phone
    for ids in chunks(addresses):
        for row in (
            await session.execute(
                select(ContactAddress.contact_id, ContactAddress.channel, ContactAddress.address).where(ContactAddress.contact_id.in_(ids))
            )
        ).all():
            addresses[row.contact_id][row.channel] = row.address
        for row in (
            await session.execute(
                select(Preference.contact_id, Preference.category, Preference.opted_in, Preference.channel).where(
                    Preference.contact_id.in_(ids)
                )
            )
        ).all():
            preferences[row.contact_id][row.category] = PreferenceView(opted_in=row.opted_in, channel=row.channel)
    return {contact.contact_id: _view(contact, addresses[contact.contact_id], preferences[contact.contact_id]) for contact in contacts}


def _view(contact: ContactRecord, addresses: dict[str, str], preferences: dict[str, PreferenceView]) -> ContactView:
    return ContactView(
        contact_id=contact.contact_id,
        language=contact.language or "zh-CN",
        timezone=contact.timezone or "Asia/Shanghai",
        quiet_hours_start=parse_hhmm(contact.quiet_hours_start),
        quiet_hours_end=parse_hhmm(contact.quiet_hours_end),
        marketing_consent=bool(contact.marketing_consent),
        erased=bool(contact.erased),
        preferred_channel=contact.preferred_channel,
        addresses=addresses,
        preferences=preferences,
    )


async def contacts_of(session: AsyncSession, customer_id: str) -> list[ContactRecord]:
    """The customer's current contacts (erased ones included, callers skip them)."""
    query = select(ContactRecord).where(ContactRecord.customer_id == customer_id, ContactRecord.active.is_(True))
    return list((await session.scalars(query.order_by(ContactRecord.contact_id))).all())


async def contacts_of_many(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, list[ContactRecord]]:
    """`contacts_of` for many customers: one query per chunk of customers."""
    result: dict[str, list[ContactRecord]] = {}
    for ids in chunks(customer_ids):
        query = select(ContactRecord).where(ContactRecord.customer_id.in_(ids), ContactRecord.active.is_(True))
        for row in (await session.scalars(query.order_by(ContactRecord.customer_id, ContactRecord.contact_id))).all():
            result.setdefault(row.customer_id, []).append(row)
    return result


async def contacts_by_id(session: AsyncSession, contact_ids: Iterable[str]) -> dict[str, ContactRecord]:
    result: dict[str, ContactRecord] = {}
    for ids in chunks(contact_ids):
        for row in (await session.scalars(select(ContactRecord).where(ContactRecord.contact_id.in_(ids)))).all():
            result[row.contact_id] = row
    return result


async def customers(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, CustomerRecord]:
    """`customer` for many ids (following merges): asked id -> record; unknown ids are left out."""
    result: dict[str, CustomerRecord] = {}
    for ids in chunks(customer_ids):
        for row in (await session.scalars(select(CustomerRecord).where(CustomerRecord.customer_id.in_(ids)))).all():
            result[row.customer_id] = row
    for asked, record in list(result.items()):
        if record.merged_into:  # rare: follow the chain one by one
            result[asked] = await customer(session, asked)
    return result
