"""Data-subject requests on one contact: export everything held on the person, or erase it.

Erasure replaces the contact's personal data with a tombstone, scrubs the person's name, phone (in the
ways people write it) and email out of free text (interactions, addresses, the customer record of an
individual), out of event bodies still held in the outbox and out of the answers kept for Idempotency-Key
retries, then emits CustomerErased so that every other service forgets the person too.
"""

from __future__ import annotations

import re

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.contacts import phone_variants
from crm_common.db import utcnow
from crm_common.privacy import Person, mentions, scrub_idempotency_records, scrub_outbox
from crm_profile.customers import publish
from crm_profile.customers.models import TOMBSTONE, Address, Contact, Interaction
from crm_profile.customers.schemas import ContactOut, InteractionOut
from crm_profile.customers.service import _emit, _touch, check_if_match, get_contact, get_customer

MIN_NAME_LENGTH = 2  # a one-letter "name" would scrub half of every text


def person_needles(contact: Contact) -> list[str]:
    """The strings that identify the person, longest first."""
    needles: set[str] = set()
    if contact.name and len(contact.name.strip()) >= MIN_NAME_LENGTH and contact.name != TOMBSTONE:
        needles.add(contact.name.strip())
    if contact.email:
        needles.add(contact.email)
    if contact.phone:
        needles.update(phone_variants(contact.phone))
    return sorted(needles, key=len, reverse=True)


def scrub_text(text: str | None, needles: list[str]) -> str | None:
    if not text or not needles:
        return text
    pattern = re.compile("|".join(re.escape(n) for n in needles), re.IGNORECASE)
    return pattern.sub(TOMBSTONE, text)


def person_of(contact: Contact) -> Person:
    """The shared matcher (crm_common.privacy): the name however spaced, the phone however written, the email."""
    return Person.of(names=[contact.name], phones=[contact.phone], emails=[contact.email])


async def _interactions_about(session: AsyncSession, contact: Contact, needles: list[str]) -> list[Interaction]:
    condition = Interaction.contact_id == contact.id
    if needles:
        condition = or_(condition, mentions(Interaction.summary, needles))
    return list((await session.scalars(select(Interaction).where(condition).order_by(Interaction.occurred_at))).all())


async def export_contact(session: AsyncSession, contact_id: str) -> dict:
    """Everything held on the person: the contact record, consent, the customer it belongs to,
    and every interaction linked to it or mentioning it."""
    contact = await get_contact(session, contact_id)
    customer = await get_customer(session, contact.customer_id)
    needles = person_needles(contact)
    interactions = await _interactions_about(session, contact, needles)
    return {
        "exported_at": utcnow(),
        "contact": ContactOut.model_validate(contact).model_dump(mode="json"),
        "customer": {"id": customer.id, "name": customer.name, "customer_type": customer.customer_type},
        "marketing_consent": {
            "given": bool(contact.marketing_consent),
            "at": contact.marketing_consent_at,
            "source": contact.marketing_consent_source,
        },
        "interactions": [InteractionOut.model_validate(i).model_dump(mode="json") for i in interactions],
    }


async def erase_contact(session: AsyncSession, contact_id: str, if_match: str | None = None) -> dict:
    """`if_match` (the contact's ETag) is checked when given; erasure requests usually come without one."""
    contact = await get_contact(session, contact_id)
    if if_match is not None and not contact.erased:
        check_if_match(if_match, contact.version, what="contact")
    if contact.erased:  # already forgotten: nothing more to do, no second event
        return {"contact_id": contact.id, "customer_id": contact.customer_id, "erased_at": contact.erased_at, "scrubbed_interactions": 0}
    customer = await get_customer(session, contact.customer_id)
    needles = person_needles(contact)
    person = person_of(contact)
    now = utcnow()

    scrubbed = 0
    for interaction in await _interactions_about(session, contact, needles):
        cleaned = person.scrub(interaction.summary)
        if cleaned != interaction.summary:
            interaction.summary = cleaned
            scrubbed += 1

    for address in (await session.scalars(select(Address).where(Address.customer_id == customer.id))).all():
        for name in ("label", "line1", "line2"):
            cleaned = person.scrub(getattr(address, name))
            if cleaned != getattr(address, name):
                setattr(address, name, cleaned)

    for name in ("name", "short_name", "registered_address"):  # an individual customer is the person
        value = getattr(customer, name)
        cleaned = person.scrub(value)
        if cleaned != value:
            setattr(customer, name, cleaned if name != "name" else (cleaned or TOMBSTONE))

    contact.name = TOMBSTONE
    contact.role = None
    contact.phone = None
    contact.email = None
    contact.preferred_channel = None
    contact.quiet_hours_start = None
    contact.quiet_hours_end = None
    contact.marketing_consent = False
    contact.marketing_consent_at = None
    contact.marketing_consent_source = None
    contact.erased_at = now
    contact.updated_at = now
    _touch(customer, now)
    await session.flush()

    # events already staged still carry the person: rewrite their bodies (pending ones leave scrubbed; the erase event follows them)
    await scrub_outbox(session, person, mentioning=needles)
    await scrub_idempotency_records(session, person, subjects=[customer.id])
    await _emit(session, publish.erased(customer.id, contact.id, now), customer.id)
    await _emit(session, publish.updated(customer, ["contacts"]), customer.id)
    return {"contact_id": contact.id, "customer_id": customer.id, "erased_at": now, "scrubbed_interactions": scrubbed}
