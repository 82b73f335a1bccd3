"""Complaints from TMS shipment incidents, a consumer batch at a time.

ShipmentDamaged, ShipmentLost and ShipmentDelayed (past the threshold) open a complaint for the customer and order;
an open complaint of the same customer for the same order gets the event on its timeline instead. A storm of
delays arrives as batches of hundreds of events, so a batch reads what it needs once (customers through their
merges, the open complaints of its orders, then through intake.Opener the rules, teams, possible duplicates and
agents on shift), decides event by event in order in memory, and writes with one flush and one outbox statement.
The result is what applying the events one at a time gives (tests/test_consumers.py compares both).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.context import correlation_id_var
from crm_common.db import utcnow
from crm_common.events.logistics import ShipmentDamaged, ShipmentDelayed, ShipmentLost
from crm_complaints.complaints import publish
from crm_complaints.complaints.access import SYSTEM
from crm_complaints.complaints.intake import Filing, Opener, load_rules
from crm_complaints.complaints.lookup import follow_merges_many
from crm_complaints.complaints.messages import Message
from crm_complaints.complaints.models import Complaint, ComplaintReference, DirectoryCustomer
from crm_complaints.complaints.priority import compute_priority
from crm_complaints.complaints.schemas import ComplaintCreate
from crm_complaints.complaints.states import OPEN_STATES
from crm_complaints.complaints.timeline import add_timeline
from crm_complaints.settings import ComplaintsSettings

ShipmentIncident = ShipmentDamaged | ShipmentLost | ShipmentDelayed

_SEVERITY_ORDER = {"delay": 1, "damage": 2, "loss": 3}


@dataclasses.dataclass(frozen=True)
class Incident:
    """One event to apply: its payload, id and correlation id (carried by the events it causes)."""

    payload: ShipmentIncident
    event_id: str
    correlation_id: str | None = None


@dataclasses.dataclass(frozen=True)
class _Described:
    incident: Incident
    category: str
    message: Message  # the description as a message key with parameters; its English is the stored description
    amount: Decimal | None

    @property
    def description(self) -> str:
        return self.message.english()


def describe(incident: Incident, settings: ComplaintsSettings) -> _Described | None:
    """The complaint an incident calls for (category, description, claimed amount); None when it calls for none."""
    payload = incident.payload
    amount = None
    order = {"order_id": payload.order_id}
    if isinstance(payload, ShipmentDamaged):
        category = "damage"
        amount = payload.estimated_loss
        if payload.description:
            message = Message("description.shipment_damaged", {**order, "text": payload.description})
        else:
            message = Message("description.shipment_damaged_unexplained", order)
    elif isinstance(payload, ShipmentLost):
        category = "loss"
        amount = payload.declared_value
        message = Message("description.shipment_lost", order)
    elif isinstance(payload, ShipmentDelayed):
        if payload.delay_minutes < settings.delay_threshold_minutes:
            return None
        category = "delay"
        delayed = {**order, "delay_minutes": payload.delay_minutes}
        if payload.reason:
            message = Message("description.shipment_delayed_reason", {**delayed, "reason": payload.reason})
        else:
            message = Message("description.shipment_delayed", delayed)
    else:
        return None
    return _Described(incident, category, message, amount)


async def open_from_shipment_events(
    session: AsyncSession, incidents: Sequence[Incident], *, settings: ComplaintsSettings, now: dt.datetime | None = None
) -> list[tuple[Complaint | None, str]]:
    """Per incident, in order: (complaint, "filed" | "attached" | "ignored")."""
    now = now or utcnow()
    described = [describe(incident, settings) for incident in incidents]
    wanted = [d for d in described if d is not None]
    if not wanted:
        return [(None, "ignored")] * len(incidents)
    batch = await _Batch.load(session, wanted, now=now, settings=settings)
    results: list[tuple[Complaint | None, str]] = []
    for d in described:
        if d is None:
            results.append((None, "ignored"))
            continue
        token = correlation_id_var.set(d.incident.correlation_id)  # the events it causes carry its correlation id
        try:
            results.append(await batch.apply(session, d))
        finally:
            correlation_id_var.reset(token)
    await publish.stage(session, batch.envelopes)
    await session.flush()
    return results


class _Batch:
    """What a batch of incidents read at once, and the complaints it opened so far."""

    def __init__(
        self,
        customers: dict[str, DirectoryCustomer | None],
        open_by_order: dict[tuple[str, str], Complaint],
        references: dict[str, set[tuple[str, str]]],
        opener: Opener | None,
        now: dt.datetime,
    ):
        self.customers = customers
        self.open_by_order = open_by_order  # (customer id, order id) -> the earliest filed open complaint
        self.references = references  # complaint id -> (kind, value) of the complaints in open_by_order
        self.opener = opener
        self.filings = {filing.source_event_id: filing for filing in opener.filings} if opener else {}
        self.now = now
        self.envelopes: list = []

    @classmethod
    async def load(cls, session: AsyncSession, wanted: list[_Described], *, now: dt.datetime, settings: ComplaintsSettings) -> _Batch:
        customers = await follow_merges_many(session, (d.incident.payload.customer_id for d in wanted))
        keys = [(_customer_id(customers, d), d.incident.payload.order_id) for d in wanted]
        open_by_order = await _open_complaints_of_orders(session, keys)
        references = await _references_of(session, list({c.id: c for c in open_by_order.values()}))
        # the first incident of an order without an open complaint opens one; the later ones attach to it
        filings: list[Filing] = []
        opening: set[tuple[str, str]] = set()
        for d, key in zip(wanted, keys):
            if key not in open_by_order and key not in opening:
                filing = _filing(d, key[0], customers[d.incident.payload.customer_id])
                filings.append(filing)
                opening.update((key[0], order_id) for order_id in filing.references()[0])
        opener = await Opener.load(session, filings, rules=await load_rules(session), now=now, settings=settings) if filings else None
        return cls(customers, open_by_order, references, opener, now)

    async def apply(self, session: AsyncSession, d: _Described) -> tuple[Complaint, str]:
        payload = d.incident.payload
        key = (_customer_id(self.customers, d), payload.order_id)
        existing = self.open_by_order.get(key)
        if existing is not None:
            await self._attach(session, existing, d)
            return existing, "attached"
        assert self.opener is not None  # Opener.load had this incident's filing
        filing = self.filings[d.incident.event_id]
        complaint, envelopes = await self.opener.open(session, filing, actor=SYSTEM, channel="tms")
        self.envelopes.extend(envelopes)
        order_ids, tracking = filing.references()  # as stored: later incidents find it by these, as in the table
        for order_id in order_ids:
            self.open_by_order.setdefault((complaint.customer_id, order_id), complaint)
        self.references[complaint.id] = {("order", o) for o in order_ids} | {("tracking", t) for t in tracking}
        return complaint, "filed"

    async def _attach(self, session: AsyncSession, existing: Complaint, d: _Described) -> None:
        payload = d.incident.payload
        known = self.references.setdefault(existing.id, set())
        if payload.tracking_number and ("tracking", payload.tracking_number) not in known:
            session.add(ComplaintReference(complaint_id=existing.id, kind="tracking", value=payload.tracking_number))
            known.add(("tracking", payload.tracking_number))
            if self.opener is not None:  # a later complaint of the batch may now duplicate it by this tracking number
                self.opener.duplicates.add(existing, [("tracking", payload.tracking_number)])
        if _SEVERITY_ORDER.get(d.category, 0) > _SEVERITY_ORDER.get(existing.category, 0):
            survivor = self.customers[payload.customer_id]
            raised = compute_priority(
                d.category, d.description, d.amount, survivor.tier if survivor else None, survivor.credit_grade if survivor else None
            )
            existing.priority = min(existing.priority, raised)
        await add_timeline(
            session,
            existing,
            "shipment_event",
            at=self.now,
            actor=SYSTEM,
            visibility="internal",
            message=d.message,
            data={"event_type": payload.event_type, "event_id": d.incident.event_id, "order_id": payload.order_id},
        )
        existing.version += 1


def _customer_id(customers: dict[str, DirectoryCustomer | None], d: _Described) -> str:
    """The customer the incident's ends in after merges; the TMS's id when the directory does not know it."""
    given = d.incident.payload.customer_id
    survivor = customers[given]
    return survivor.id if survivor is not None else given


def _filing(d: _Described, customer_id: str, customer: DirectoryCustomer | None) -> Filing:
    payload = d.incident.payload
    data = ComplaintCreate(
        customer_id=customer_id,
        order_ids=[payload.order_id],
        tracking_numbers=[payload.tracking_number] if payload.tracking_number else [],
        category=d.category,
        description=d.description,
        channel="web",
        claimed_amount=d.amount,
    )
    return Filing(data, customer_id, customer, source_event_id=d.incident.event_id, description_message=d.message)


async def _open_complaints_of_orders(session: AsyncSession, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Complaint]:
    """(customer id, order id) -> the earliest filed open complaint referencing the order, locked (PostgreSQL)."""
    wanted = set(keys)
    rows = await session.execute(
        select(Complaint, ComplaintReference.value)
        .join(ComplaintReference, ComplaintReference.complaint_id == Complaint.id)
        .where(
            Complaint.customer_id.in_(sorted({customer for customer, _ in wanted})),
            Complaint.status.in_(OPEN_STATES),
            Complaint.merged_into.is_(None),
            ComplaintReference.kind == "order",
            ComplaintReference.value.in_(sorted({order for _, order in wanted})),
        )
        .order_by(Complaint.filed_at)
        .with_for_update()
    )
    found: dict[tuple[str, str], Complaint] = {}
    for complaint, order_id in rows.all():
        key = (complaint.customer_id, order_id)
        if key in wanted:
            found.setdefault(key, complaint)
    return found


async def _references_of(session: AsyncSession, complaint_ids: list[str]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {cid: set() for cid in complaint_ids}
    if complaint_ids:
        rows = await session.execute(
            select(ComplaintReference.complaint_id, ComplaintReference.kind, ComplaintReference.value).where(
                ComplaintReference.complaint_id.in_(complaint_ids)
            )
        )
        for complaint_id, kind, value in rows.all():
            out[complaint_id].add((kind, value))
    return out
