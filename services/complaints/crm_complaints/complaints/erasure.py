"""CustomerErased: forget the person in every complaint of the customer.

What identifies the person is what this service knew before the event: the directory contact (name, phone,
email), and the reporter details of the complaints it reported. When `contact_id` is None the whole
(individual) customer is the person: every contact, the customer's name and every complaint's reporter.

- complaints reported by the person (same contact id, or a reporter phone / email / name equal to the
  contact's) lose their reporter details and contact id;
- the person's name, phone (however written) and email are replaced by `[erased]` in the free text of
  every complaint of the customer (description, desired outcome, outcome, survey comment, attachment
  names, timeline bodies and data, stored idempotent responses) and in the outbox rows of the customer;
- ids, numbers, categories, references, clocks and timestamps stay, so reports stay right;
- each changed complaint gets an internal timeline entry `person_erased` (no personal data in it).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common import audit
from crm_common.contacts import email_key, phone_key
from crm_common.db import utcnow
from crm_common.privacy import Person, scrub_idempotency_records, scrub_outbox
from crm_complaints.complaints import directory, messages
from crm_complaints.complaints.access import SYSTEM
from crm_complaints.complaints.lookup import follow_merges
from crm_complaints.complaints.models import Complaint, DirectoryContact, DirectoryCustomer, TimelineEntry
from crm_complaints.complaints.timeline import add_timeline

REPORTER_FIELDS = ("reporter_name", "reporter_phone", "reporter_email")
_FREE_TEXT = ("description", "desired_outcome", "outcome", "survey_comment")


def _same_name(a: str | None, b: str | None) -> bool:
    return bool(a and b and " ".join(a.split()).casefold() == " ".join(b.split()).casefold())


def _reported_by(complaint: Complaint, contact_id: str, contact: DirectoryContact | None) -> bool:
    if complaint.contact_id == contact_id:
        return True
    if contact is None:
        return False
    return bool(
        (contact.phone and complaint.reporter_phone and phone_key(complaint.reporter_phone) == contact.phone)
        or (contact.email and complaint.reporter_email and email_key(complaint.reporter_email) == contact.email)
        or _same_name(complaint.reporter_name, contact.name)
    )


async def _customer_ids(session: AsyncSession, customer_id: str) -> set[str]:
    """The customer, the survivor it was merged into, and every customer merged into either."""
    ids = {customer_id}
    survivor = await follow_merges(session, customer_id)
    if survivor is not None:
        ids.add(survivor.id)
    while True:
        more = set((await session.scalars(select(DirectoryCustomer.id).where(DirectoryCustomer.merged_into.in_(ids)))).all()) - ids
        if not more:
            return ids
        ids |= more


async def erase_person(session: AsyncSession, customer_id: str, contact_id: str | None, *, erased_at: dt.datetime | None = None) -> dict:
    now = erased_at or utcnow()
    customer_ids = await _customer_ids(session, customer_id)
    complaints = list(
        (
            await session.scalars(
                select(Complaint)
                .where(or_(Complaint.customer_id.in_(customer_ids), *([Complaint.contact_id == contact_id] if contact_id else [])))
                .order_by(Complaint.filed_at)
                .with_for_update(key_share=True)
            )
        ).all()
    )

    if contact_id:
        contact = await session.get(DirectoryContact, contact_id)
        reported = [c for c in complaints if _reported_by(c, contact_id, contact)]
        person = Person.of(
            names=[contact.name if contact else None],
            phones=[contact.phone if contact else None],
            emails=[contact.email if contact else None],
        )
    else:
        contacts = (await session.scalars(select(DirectoryContact).where(DirectoryContact.customer_id.in_(customer_ids)))).all()
        customer = await session.get(DirectoryCustomer, customer_id)
        reported = complaints
        person = Person.of(
            names=[c.name for c in contacts] + [customer.name if customer else None],
            phones=[c.phone for c in contacts],
            emails=[c.email for c in contacts],
        )
    # what the person gave when reporting is theirs too (a number they called from, a second address)
    person = person.merged(
        Person.of(
            names=[c.reporter_name for c in reported],
            phones=[c.reporter_phone for c in reported],
            emails=[c.reporter_email for c in reported],
        )
    )

    await directory.apply_erased(session, customer_id, contact_id)  # directory rows (and the customer, when whole)

    reported_ids = {c.id for c in reported}
    changed: set[str] = set()
    for complaint in complaints:
        touched = False
        if complaint.id in reported_ids and (complaint.contact_id is not None or any(getattr(complaint, f) for f in REPORTER_FIELDS)):
            for name in REPORTER_FIELDS:
                setattr(complaint, name, None)
            complaint.contact_id = None
            touched = True
        for name in _FREE_TEXT:
            value = getattr(complaint, name)
            cleaned = person.scrub(value)
            if cleaned != value:
                setattr(complaint, name, cleaned)
                touched = True
        if complaint.description_params is not None:  # the TMS's text may name the person, as the description does
            params = person.scrub_json(complaint.description_params)
            if params != complaint.description_params:
                complaint.description_params = params
                touched = True
        attachments = person.scrub_json(complaint.attachments or [])
        if attachments != (complaint.attachments or []):
            complaint.attachments = attachments
            touched = True
        if touched:
            changed.add(complaint.id)

    complaint_ids = [c.id for c in complaints]
    if complaint_ids and person:
        entries = (await session.scalars(select(TimelineEntry).where(TimelineEntry.complaint_id.in_(complaint_ids)))).all()
        for entry in entries:
            body = person.scrub(entry.body)
            data = person.scrub_json(entry.data or {})
            params = person.scrub_json(entry.message_params) if entry.message_params is not None else None  # a reason in their words
            if body != entry.body or data != (entry.data or {}) or params != entry.message_params:
                entry.body, entry.data, entry.message_params = body, data, params
                changed.add(entry.complaint_id)

    def rewrite(envelope: dict) -> dict:
        payload = envelope.get("payload")
        if isinstance(payload, dict) and payload.get("complaint_id") in reported_ids:
            _clear_reporter(payload)
        return envelope

    def clear_reported(answer):  # a kept answer of a complaint the person reported: its reporter goes as in the complaint
        if isinstance(answer, dict) and answer.get("id") in reported_ids:
            _clear_reporter(answer)
        return answer

    keys = customer_ids | {c.customer_id for c in complaints}
    outbox_rows = await scrub_outbox(session, person, keys=keys, rewrite=rewrite)
    await scrub_idempotency_records(session, person, subjects=keys, rewrite=clear_reported)

    by_id = {c.id: c for c in complaints}
    for complaint_id in sorted(changed):
        complaint = by_id[complaint_id]
        complaint.version += 1
        await add_timeline(
            session,
            complaint,
            "person_erased",
            at=now,
            actor=SYSTEM,
            visibility="internal",
            message=messages.Message("timeline.person_erased"),
            data={"reporter": complaint_id in reported_ids},
        )
    if contact_id:  # the audit trail keeps the person's rows, pseudonymised (crm_common.audit)
        await audit.append(
            session,
            [
                audit.AuditEntry(
                    SYSTEM.id,
                    SYSTEM.role,
                    "erase",
                    "complaint-reporter",
                    customer_id=customer_id,
                    contact_id=contact_id,
                    fields=sorted(REPORTER_FIELDS),
                )
            ],
        )
        await audit.pseudonymise_contact(session, contact_id)
    await session.flush()
    return {"complaints": len(changed), "reported": len(reported_ids), "outbox_rows": outbox_rows}


def _clear_reporter(value: dict) -> None:
    for name in REPORTER_FIELDS:
        if name in value:
            value[name] = None
    if isinstance(value.get("reporter"), dict):
        value["reporter"] = {k: None for k in value["reporter"]}
    if "contact_id" in value:
        value["contact_id"] = None
