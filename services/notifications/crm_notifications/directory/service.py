"""Keeps the local copy of customers and contacts current from customer-profile and scoring events."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.events.customers import CustomerErased, CustomerMerged, CustomerSnapshot
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
    for contact in snapshot.contacts:
        row = await session.get(ContactRecord, contact.contact_id)
        if row is None:
            row = ContactRecord(contact_id=contact.contact_id, customer_id=snapshot.customer_id, erased=False)
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
    addresses: dict[str, str] = {}
    if contact.email:
        addresses["email"] = contact.email
    if contact.phone:
        addresses["sms"] = contact.phone
    for row in (await session.scalars(select(ContactAddress).where(ContactAddress.contact_id == contact.contact_id))).all():
        addresses[row.channel] = row.address
    preferences = {
        row.category: PreferenceView(opted_in=row.opted_in, channel=row.channel)
        for row in (await session.scalars(select(Preference).where(Preference.contact_id == contact.contact_id))).all()
    }
    return ContactView(
        contact_id=contact.contact_id,
        language=contact.language or "zh-CN",
        timezone=contact.timezone or "Asia/Shanghai",
        quiet_hours_start=parse_hhmm(contact.quiet_hours_start),
        quiet_hours_end=parse_hhmm(contact.quiet_hours_end),
        marketing_consent=bool(contact.marketing_consent),
        erased=bool(contact.erased) or erased_customer,
        preferred_channel=contact.preferred_channel,
        addresses=addresses,
        preferences=preferences,
    )


async def contacts_of(session: AsyncSession, customer_id: str) -> list[ContactRecord]:
    """The customer's current contacts (erased ones included, callers skip them)."""
    query = select(ContactRecord).where(ContactRecord.customer_id == customer_id, ContactRecord.active.is_(True))
    return list((await session.scalars(query.order_by(ContactRecord.contact_id))).all())
