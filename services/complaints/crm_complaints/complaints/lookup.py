"""Finding complaints: one by id, the call-center status lookup (by number, customer, phone or tracking number) and
the details of a page of them (references, clocks, timeline) in one statement."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text, any_, bindparam, cast, literal, literal_column, null, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.contacts import phone_key
from crm_common.db import RowReader, UTCDateTime
from crm_complaints.complaints.errors import ComplaintNotFound, InvalidComplaintInput, field_error
from crm_complaints.complaints.models import Complaint, ComplaintReference, DirectoryContact, DirectoryCustomer, SlaClockRow, TimelineEntry


async def get_complaint(session: AsyncSession, complaint_id: str, *, for_update: bool = False) -> Complaint:
    if "\x00" in complaint_id:
        raise ComplaintNotFound()
    query = select(Complaint).where(Complaint.id == complaint_id)
    if for_update:
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE: timeline inserts may still reference it
    complaint = await session.scalar(query)
    if complaint is None:
        raise ComplaintNotFound(complaint_id)
    return complaint


async def follow_merges(session: AsyncSession, customer_id: str) -> DirectoryCustomer | None:
    """The directory's customer this one ends in after its merges (None: not in the directory)."""
    return (await follow_merges_many(session, [customer_id]))[customer_id]


async def follow_merges_many(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, DirectoryCustomer | None]:
    """follow_merges() for many customers: one query per step of the longest merge chain, not per customer."""
    wanted = list(dict.fromkeys(customer_ids))
    loaded: dict[str, DirectoryCustomer] = {}
    missing = set(wanted)
    while missing:
        rows = (await session.scalars(select(DirectoryCustomer).where(DirectoryCustomer.id.in_(missing)))).all()
        loaded.update((row.id, row) for row in rows)
        # only ids not loaded yet: each round loads new rows or ends, so a cycle or an unknown id ends the walk
        missing = {row.merged_into for row in rows if row.merged_into and row.merged_into not in loaded}
    return {customer_id: _end_of_merges(loaded, customer_id) for customer_id in wanted}


def _end_of_merges(loaded: Mapping[str, DirectoryCustomer], customer_id: str) -> DirectoryCustomer | None:
    seen: set[str] = set()
    customer = loaded.get(customer_id)
    while customer is not None and customer.merged_into and customer.id not in seen:
        seen.add(customer.id)
        customer = loaded.get(customer.merged_into)
    return customer


async def references(session: AsyncSession, complaint_id: str) -> tuple[list[str], list[str]]:
    rows = (
        await session.execute(
            select(ComplaintReference.kind, ComplaintReference.value)
            .where(ComplaintReference.complaint_id == complaint_id)
            .order_by(ComplaintReference.id)
        )
    ).all()
    return [v for k, v in rows if k == "order"], [v for k, v in rows if k == "tracking"]


async def references_of(session: AsyncSession, complaint_ids: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """references() for a page of complaints in one query: {complaint_id: (order_ids, tracking_numbers)}."""
    out: dict[str, tuple[list[str], list[str]]] = {cid: ([], []) for cid in complaint_ids}
    if not complaint_ids:
        return out
    rows = (
        await session.execute(
            select(ComplaintReference.complaint_id, ComplaintReference.kind, ComplaintReference.value)
            .where(ComplaintReference.complaint_id.in_(set(complaint_ids)))
            .order_by(ComplaintReference.id)
        )
    ).all()
    for cid, kind, value in rows:
        orders, tracking = out[cid]
        if kind == "order":
            orders.append(value)
        elif kind == "tracking":
            tracking.append(value)
    return out


def _null(type_):
    return cast(null(), type_)


def _member_of(column, name: str, arrays: bool):
    """`column` in the list parameter `name`: one array parameter on asyncpg (`= ANY`, one prepared statement whatever
    the list's length), SQLAlchemy's expanding IN otherwise (see crm_common.db.RowReader)."""
    if arrays:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@functools.cache
def _page_details_statement(*, customer_view: bool, with_clocks: bool, arrays: bool):
    """The UNION ALL of references, timeline and (staff) clocks for the complaint ids in the list parameter `ids`.
    Built once per variant: the hot path then neither rebuilds the statement nor recomputes its cache key."""
    r, c, t = ComplaintReference, SlaClockRow, TimelineEntry
    parts = [
        select(  # the first SELECT gives the result column types
            r.complaint_id.label("cid"),
            literal_column("'r'", String).label("src"),
            r.id.label("rid"),
            r.kind.label("kind"),
            r.value.label("value"),
            _null(String(10)).label("visibility"),
            _null(String(100)).label("actor_id"),
            _null(Text).label("body"),
            _null(JSON).label("data"),
            _null(String(60)).label("message_key"),
            _null(JSON).label("message_params"),
            _null(UTCDateTime).label("at"),
            _null(Integer).label("target_minutes"),
            _null(UTCDateTime).label("deadline_at"),
            _null(UTCDateTime).label("stopped_at"),
            _null(Boolean).label("paused"),
            _null(Integer).label("escalation_level"),
            _null(UTCDateTime).label("breached_at"),
        ).where(_member_of(r.complaint_id, "ids", arrays))
    ]
    timeline_part = select(
        t.complaint_id,
        literal_column("'t'", String),
        t.id,
        t.kind,
        _null(Text),
        t.visibility,
        t.actor_id,
        t.body,
        t.data,
        t.message_key,
        t.message_params,
        t.at,
        _null(Integer),
        _null(UTCDateTime),
        _null(UTCDateTime),
        _null(Boolean),
        _null(Integer),
        _null(UTCDateTime),
    ).where(_member_of(t.complaint_id, "ids", arrays))
    if customer_view:
        timeline_part = timeline_part.where(t.visibility == "customer")
    parts.append(timeline_part)
    if with_clocks:
        parts.append(
            select(
                c.complaint_id,
                literal_column("'c'", String),
                c.id,
                c.kind,
                _null(Text),
                _null(String(10)),
                _null(String(100)),
                _null(Text),
                _null(JSON),
                _null(String(60)),
                _null(JSON),
                _null(UTCDateTime),
                c.target_minutes,
                c.deadline_at,
                c.stopped_at,
                c.paused,
                c.escalation_level,
                c.breached_at,
            ).where(_member_of(c.complaint_id, "ids", arrays))
        )
    return union_all(*parts)


async def page_details(
    reader: RowReader, complaint_ids: list[str], *, customer_view: bool, with_clocks: bool = True
) -> tuple[dict[str, tuple[list[str], list[str]]], dict[str, list[SimpleNamespace]], dict[str, list[SimpleNamespace]]]:
    """References, SLA clocks and timeline of a page of complaints in ONE statement (UNION ALL of the three tables):
    the status lookup is the call-center hot path, so one round trip instead of three. Same content and order as
    references_of / clocks_of_many / timelines: references by id, clocks by kind, timeline by (at, id)."""
    refs: dict[str, tuple[list[str], list[str]]] = {cid: ([], []) for cid in complaint_ids}
    clocks: dict[str, list[SimpleNamespace]] = {cid: [] for cid in complaint_ids}
    entries: dict[str, list[SimpleNamespace]] = {cid: [] for cid in complaint_ids}
    if not complaint_ids:
        return refs, clocks, entries
    statement = _page_details_statement(customer_view=customer_view, with_clocks=with_clocks, arrays=reader.arrays)
    rows = await reader.rows(statement, {"ids": list(set(complaint_ids))})
    for row in sorted((x for x in rows if x["src"] == "r"), key=lambda x: x["rid"]):
        orders, tracking = refs[row["cid"]]
        if row["kind"] == "order":
            orders.append(row["value"])
        elif row["kind"] == "tracking":
            tracking.append(row["value"])
    for row in sorted((x for x in rows if x["src"] == "c"), key=lambda x: (x["kind"], x["rid"])):
        clocks[row["cid"]].append(
            SimpleNamespace(
                kind=row["kind"],
                target_minutes=row["target_minutes"],
                deadline_at=row["deadline_at"],
                stopped_at=row["stopped_at"],
                paused=row["paused"],
                escalation_level=row["escalation_level"],
                breached_at=row["breached_at"],
            )
        )
    for row in sorted((x for x in rows if x["src"] == "t"), key=lambda x: (x["at"], x["rid"])):
        entries[row["cid"]].append(
            SimpleNamespace(
                at=row["at"],
                kind=row["kind"],
                visibility=row["visibility"],
                actor_id=row["actor_id"],
                body=row["body"],
                data=row["data"],
                message_key=row["message_key"],
                message_params=row["message_params"],
            )
        )
    return refs, clocks, entries


# what a lookup page shows of a complaint (ComplaintOut / CustomerComplaintOut): plain rows, no ORM objects
LOOKUP_COLUMNS = tuple(
    Complaint.__table__.c[name]
    for name in (
        "id",
        "number",
        "customer_id",
        "category",
        "priority",
        "channel",
        "status",
        "team_id",
        "agent_id",
        "description",
        "description_key",
        "description_params",
        "desired_outcome",
        "claimed_amount",
        "attachments",
        "reporter_name",
        "reporter_phone",
        "reporter_email",
        "language",
        "duplicate_of",
        "merged_into",
        "filed_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "outcome",
        "compensation_amount",
        "reopen_count",
        "survey_score",
        "contact_id",  # contact_id: the audit trail's subject
    )
)


_DIRECTORY = DirectoryCustomer.__table__.c


_CUSTOMER_MERGE = select(_DIRECTORY.id, _DIRECTORY.merged_into).where(_DIRECTORY.id == bindparam("customer_id"))


_PHONE_OWNERS = select(DirectoryContact.__table__.c.customer_id.label("id")).where(DirectoryContact.__table__.c.phone == bindparam("phone"))


@functools.cache
def _merged_into_statement(arrays: bool):
    return select(_DIRECTORY.id).where(_member_of(_DIRECTORY.merged_into, "ids", arrays))


async def _merge_survivor(reader: RowReader, customer_id: str) -> str | None:
    """follow_merges() on plain rows: the id of the customer this one ends in after its merges (None: not in the directory)."""
    seen: set[str] = set()
    customer = _first(await reader.rows(_CUSTOMER_MERGE, {"customer_id": customer_id}))
    while customer is not None and customer["merged_into"] and customer["id"] not in seen:
        seen.add(customer["id"])
        customer = _first(await reader.rows(_CUSTOMER_MERGE, {"customer_id": customer["merged_into"]}))
    return customer["id"] if customer is not None else None


def _first(rows):
    return rows[0] if rows else None


@functools.cache
def _lookup_statement(by_number: bool, by_customers: bool, by_phone: bool, by_tracking: bool, arrays: bool):
    """The lookup SELECT for one combination of keys, values as bound parameters: built (and its cache key
    computed) once per combination instead of per request."""
    c, references = Complaint.__table__.c, ComplaintReference.__table__.c
    query = select(*LOOKUP_COLUMNS)
    if by_number:
        query = query.where(c.number == bindparam("number"))
    if by_customers:
        query = query.where(_member_of(c.customer_id, "customer_ids", arrays))
    if by_phone:
        query = query.where((c.reporter_phone == bindparam("phone")) | _member_of(c.customer_id, "phone_owners", arrays))
    if by_tracking:
        # the kinds as bound values, not a literal IN list (SQLAlchemy renders that only at execution: see asyncpg_sql)
        query = query.where(
            c.id.in_(
                select(references.complaint_id).where(
                    references.kind.in_([literal("tracking"), literal("order")]), references.value == bindparam("tracking")
                )
            )
        )
    return query.order_by(c.filed_at.desc()).limit(bindparam("limit", type_=Integer))


async def lookup(
    reader: RowReader,
    *,
    number: str | None = None,
    customer_id: str | None = None,
    phone: str | None = None,
    tracking_number: str | None = None,
    limit: int = 50,
) -> Sequence[Mapping[str, Any]]:
    """Complaints by number, customer (following merges), phone (reporter or a contact's customer) or tracking number/order
    id, newest first: rows of LOOKUP_COLUMNS as mappings. `reader` comes from Database.read() (the API: no ORM objects,
    no transaction) or wraps a session (SessionReader)."""
    if not any((number, customer_id, phone, tracking_number)):
        raise InvalidComplaintInput(
            "Give number, customer_id, phone or tracking_number.",
            title="Lookup needs a key",
            errors=[field_error("query", msg="one of number, customer_id, phone, tracking_number is required", type_="missing")],
        )
    values: dict = {"limit": limit}
    if number:
        values["number"] = number.strip().upper()
    if customer_id:
        survivor = await _merge_survivor(reader, customer_id)
        ids = {customer_id} | ({survivor} if survivor is not None else set())
        merged = [row["id"] for row in await reader.rows(_merged_into_statement(reader.arrays), {"ids": list(ids)})]
        values["customer_ids"] = sorted(ids | set(merged))
    if phone:
        values["phone"] = normalized = phone_key(phone)
        values["phone_owners"] = sorted({row["id"] for row in await reader.rows(_PHONE_OWNERS, {"phone": normalized})})
    if tracking_number:
        values["tracking"] = tracking_number.strip()
    statement = _lookup_statement(bool(number), bool(customer_id), bool(phone), bool(tracking_number), reader.arrays)
    return await reader.rows(statement, values)
