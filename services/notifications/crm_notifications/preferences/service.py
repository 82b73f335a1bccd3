from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.contacts import normalize_email, normalize_phone
from crm_common.db import utcnow
from crm_notifications import catalog
from crm_notifications.channels.webhook import endpoint_secret, standard_secret
from crm_notifications.directory import service as directory
from crm_notifications.directory.models import ContactRecord
from crm_notifications.preferences.models import ContactAddress, Preference
from crm_notifications.preferences.policy import EVERY_CATEGORY, consent_decision
from crm_notifications.preferences.schemas import CategoryChoice, CategoryState, PreferencesIn, PreferencesOut
from crm_notifications.templates.service import invalid

CONTACT_CHANNELS = ("email", "sms", "push", "webhook")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


class ContactNotFound(LookupError):
    pass


def address_error(channel: str, address: str) -> str | None:
    """Why an address is unusable on a channel, or None when it is fine."""
    if channel in ("email", "sms"):
        try:
            (normalize_email if channel == "email" else normalize_phone)(address)
        except ValueError as exc:
            return str(exc)
        return None
    if channel == "webhook":
        return None if _URL.match(address) and len(address) <= 1000 else "webhook address must be an http(s) URL"
    if channel == "push":
        return (
            None
            if 8 <= len(address) <= 500 and not any(c.isspace() for c in address)
            else "push token must be 8-500 characters without spaces"
        )
    return f"unknown channel {channel!r}"


async def contact_or_404(session: AsyncSession, contact_id: str) -> ContactRecord:
    contact = await session.get(ContactRecord, contact_id)
    if contact is None or contact.erased:
        raise ContactNotFound(f"No contact {contact_id!r}.")
    return contact


async def update(session: AsyncSession, contact_id: str, data: PreferencesIn, *, source: str = "api") -> None:
    contact = await contact_or_404(session, contact_id)
    errors = []
    for category, choice in data.categories.items():
        if category != EVERY_CATEGORY and category not in catalog.CATEGORIES:
            errors.append({"loc": ["body", "categories", category], "msg": f"unknown category {category!r}", "type": "unknown_category"})
        if choice.channel is not None and choice.channel not in CONTACT_CHANNELS:
            errors.append(
                {
                    "loc": ["body", "categories", category, "channel"],
                    "msg": f"unknown channel {choice.channel!r}",
                    "type": "unknown_channel",
                }
            )
    for channel, address in data.addresses.items():
        problem = address_error(channel, address) if channel in CONTACT_CHANNELS else f"unknown channel {channel!r}"
        if problem:
            errors.append({"loc": ["body", "addresses", channel], "msg": problem, "type": "invalid_address"})
    if errors:
        raise invalid(errors, "; ".join(e["msg"] for e in errors))
    now = utcnow()
    for category, choice in data.categories.items():
        row = await session.get(Preference, (contact.contact_id, category))
        if row is None:
            row = Preference(contact_id=contact.contact_id, category=category)
            session.add(row)
        row.opted_in, row.channel, row.source, row.updated_at = choice.opted_in, choice.channel, source, now
    for channel, address in data.addresses.items():
        row = await session.get(ContactAddress, (contact.contact_id, channel))
        if row is None:
            row = ContactAddress(contact_id=contact.contact_id, channel=channel)
            session.add(row)
        row.address, row.updated_at = address.strip(), now
    await session.flush()


async def opt_out(session: AsyncSession, contact_id: str, category: str, *, source: str) -> None:
    row = await session.get(Preference, (contact_id, category))
    if row is None:
        row = Preference(contact_id=contact_id, category=category)
        session.add(row)
    row.opted_in, row.source, row.updated_at = False, source, utcnow()
    await session.flush()


async def show(session: AsyncSession, contact_id: str, *, webhook_master_secret: str | None = None) -> PreferencesOut:
    contact = await contact_or_404(session, contact_id)
    view = await directory.contact_view(session, contact)
    stored = {row.category: row for row in (await session.scalars(select(Preference).where(Preference.contact_id == contact_id))).all()}
    states = []
    for category, (kind, _default) in catalog.CATEGORIES.items():
        if kind == "internal":
            continue
        decision = consent_decision(view, category)
        row = stored.get(category)
        states.append(
            CategoryState(
                category=category,
                kind=kind,
                opted_in=row.opted_in if row else None,
                channel=row.channel if row else None,
                effective=decision.reason or "send",
            )
        )
    secret = None
    if webhook_master_secret and "webhook" in view.addresses:
        secret = endpoint_secret(webhook_master_secret, contact.contact_id)
    general = stored.get(EVERY_CATEGORY)
    return PreferencesOut(
        contact_id=contact.contact_id,
        customer_id=contact.customer_id,
        language=view.language,
        timezone=view.timezone,
        marketing_consent=view.marketing_consent,
        addresses=view.addresses,
        webhook_secret=secret,
        webhook_signing_secret=standard_secret(secret) if secret else None,
        every_category=CategoryChoice(opted_in=general.opted_in, channel=general.channel) if general else None,
        categories=states,
    )
