"""Complaint use cases. Every function works inside the caller's transaction; a Problem rolls it all back."""
from __future__ import annotations

import datetime as dt
import functools
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import phonenumbers
from sqlalchemy import JSON, Boolean, Integer, String, Text, any_, bindparam, cast, func, literal, literal_column, null, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import RowReader, UTCDateTime, dialect_insert, utcnow
from crm_common.events.complaints import (
    ComplaintAssigned,
    ComplaintClosed,
    ComplaintFiled,
    ComplaintReopened,
    ComplaintResolved,
    SurveyAnswered,
)
from crm_common.outbox import emit
from crm_common.problems import Problem
from crm_complaints import SERVICE_NAME
from crm_complaints.complaints import routing
from crm_complaints.complaints.models import (
    Agent,
    AgentShift,
    Complaint,
    ComplaintReference,
    DirectoryContact,
    DirectoryCustomer,
    RoutingRuleRow,
    SlaClockRow,
    Team,
    TimelineEntry,
)
from crm_complaints.complaints.priority import CATEGORIES, compute_priority
from crm_complaints.complaints.schemas import ComplaintCreate
from crm_complaints.complaints.sla import DEFAULT_TARGETS, BusinessCalendar, SlaClock, Stretch
from crm_complaints.complaints.states import OPEN_STATES, check_reopen, check_transition
from crm_complaints.settings import ComplaintsSettings
from crm_complaints.setup import holidays as mainland_holidays
from crm_complaints.survey import service as survey_links

STAFF_ROLES = frozenset({"agent", "team_lead", "supervisor", "manager", "admin", "system", "account_manager"})
# account managers follow their customers' complaints: they read, add notes and record what the customer said,
# but the handling team moves the complaint.
ACCOUNT_MANAGER_ACTIONS = frozenset({"note", "customer_message"})
CROSS_TEAM_ROLES = frozenset({"supervisor", "manager", "admin", "system"})
_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class Actor:
    """Who acts, from the gateway's X-Actor-Id / X-Actor-Role / X-Actor-Team headers."""

    id: str
    role: str
    team: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


SYSTEM = Actor(id="system", role="system")


# ---- helpers ---------------------------------------------------------------------------------

def normalize_phone(raw: str | None, region: str = "CN") -> str | None:
    if not raw:
        return None
    try:
        parsed = phonenumbers.parse(raw, region)
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = "".join(ch for ch in raw if ch.isdigit() or ch == "+")
    return digits or None


def normalize_email(raw: str | None) -> str | None:
    return raw.strip().lower() if raw else None


def new_number(now: dt.datetime) -> str:
    return "CP" + now.strftime("%y%m%d") + "".join(secrets.choice(_B32) for _ in range(6))


def _micro(delta: dt.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _clock_from_row(row: SlaClockRow) -> SlaClock:
    return SlaClock(
        kind=row.kind,
        target_minutes=row.target_minutes,
        consumed=dt.timedelta(microseconds=int(row.consumed_us or 0)),
        running_since=row.running_since,
        paused=row.paused,
        stopped_at=row.stopped_at,
        restartable=row.kind == "resolution",
        breached_at=row.breached_at,
        history=None if row.stretches is None else tuple(Stretch.from_dict(stretch) for stretch in row.stretches),
    )


def _store_clock(row: SlaClockRow, clock: SlaClock, calendar: BusinessCalendar) -> None:
    row.target_minutes = clock.target_minutes
    row.consumed_us = _micro(clock.consumed)
    row.running_since = clock.running_since
    row.paused = clock.paused
    row.stopped_at = clock.stopped_at
    row.breached_at = clock.breached_at
    row.stretches = None if clock.history is None else [stretch.to_dict() for stretch in clock.history]
    row.deadline_at = clock.deadline(calendar)
    row.next_escalation_at = clock.escalation_due(calendar, row.escalation_level + 1)


async def team_calendar(session: AsyncSession, team_id: str | None, settings: ComplaintsSettings) -> BusinessCalendar:
    team = await session.get(Team, team_id) if team_id else None
    if team is None:
        return BusinessCalendar(timezone=settings.default_timezone)
    return BusinessCalendar.from_dict(team.calendar)


async def get_or_create_team(session: AsyncSession, team_id: str, settings: ComplaintsSettings) -> Team:
    team = await session.get(Team, team_id)
    if team is None:  # insert unless a concurrent PUT or filing created it meanwhile (no UNIQUE conflict either way)
        await session.execute(dialect_insert(session, Team).values(
            id=team_id, name=team_id.replace("_", " ").title(),
            calendar=mainland_holidays.prefill(BusinessCalendar(timezone=settings.default_timezone).to_dict(), utcnow().date()),
            strategy="least_load").on_conflict_do_nothing(index_elements=[Team.id]))
        team = await session.get(Team, team_id)
    return team


async def add_timeline(session: AsyncSession, complaint: Complaint, kind: str, *, at: dt.datetime, visibility: str = "internal",
                       actor: Actor | None = None, body: str | None = None, data: dict | None = None) -> TimelineEntry:
    entry = TimelineEntry(complaint_id=complaint.id, at=at, kind=kind, visibility=visibility,
                          actor_id=actor.id if actor else None, body=body, data=data or {})
    session.add(entry)
    return entry


async def references(session: AsyncSession, complaint_id: str) -> tuple[list[str], list[str]]:
    rows = (await session.execute(
        select(ComplaintReference.kind, ComplaintReference.value)
        .where(ComplaintReference.complaint_id == complaint_id).order_by(ComplaintReference.id)
    )).all()
    return [v for k, v in rows if k == "order"], [v for k, v in rows if k == "tracking"]


async def clocks_of(session: AsyncSession, complaint_id: str) -> list[SlaClockRow]:
    return list((await session.scalars(
        select(SlaClockRow).where(SlaClockRow.complaint_id == complaint_id).order_by(SlaClockRow.kind)
    )).all())


async def references_of(session: AsyncSession, complaint_ids: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """references() for a page of complaints in one query: {complaint_id: (order_ids, tracking_numbers)}."""
    out: dict[str, tuple[list[str], list[str]]] = {cid: ([], []) for cid in complaint_ids}
    if not complaint_ids:
        return out
    rows = (await session.execute(
        select(ComplaintReference.complaint_id, ComplaintReference.kind, ComplaintReference.value)
        .where(ComplaintReference.complaint_id.in_(set(complaint_ids))).order_by(ComplaintReference.id)
    )).all()
    for cid, kind, value in rows:
        orders, tracking = out[cid]
        if kind == "order":
            orders.append(value)
        elif kind == "tracking":
            tracking.append(value)
    return out


async def clocks_of_many(session: AsyncSession, complaint_ids: list[str]) -> dict[str, list[SlaClockRow]]:
    """clocks_of() for a page of complaints in one query."""
    out: dict[str, list[SlaClockRow]] = {cid: [] for cid in complaint_ids}
    if not complaint_ids:
        return out
    for row in (await session.scalars(
        select(SlaClockRow).where(SlaClockRow.complaint_id.in_(set(complaint_ids))).order_by(SlaClockRow.kind, SlaClockRow.id)
    )).all():
        out[row.complaint_id].append(row)
    return out


# ---- customers -------------------------------------------------------------------------------

async def follow_merges(session: AsyncSession, customer_id: str) -> DirectoryCustomer | None:
    seen: set[str] = set()
    customer = await session.get(DirectoryCustomer, customer_id)
    while customer is not None and customer.merged_into and customer.id not in seen:
        seen.add(customer.id)
        customer = await session.get(DirectoryCustomer, customer.merged_into)
    return customer


async def resolve_customer(session: AsyncSession, *, customer_id: str | None, phone: str | None, email: str | None,
                           reporter_phone: str | None = None, reporter_email: str | None = None) -> tuple[DirectoryCustomer, str | None]:
    """The customer (and contact) a complaint belongs to; 422 listing what was tried when nobody matches."""
    tried: list[dict] = []
    if customer_id:
        tried.append({"by": "customer_id", "value": customer_id})
        customer = await follow_merges(session, customer_id)
        if customer is not None and not customer.erased:
            return customer, None
    for by, value in (("phone", phone), ("email", email), ("reporter.phone", reporter_phone), ("reporter.email", reporter_email)):
        if not value or customer_id:
            continue
        if "phone" in by:
            normalized = normalize_phone(value)
            condition = DirectoryContact.phone == normalized
        else:
            normalized = normalize_email(value)
            condition = DirectoryContact.email == normalized
        tried.append({"by": by, "value": normalized})
        contacts = (await session.scalars(select(DirectoryContact).where(condition))).all()
        customers = {}
        for contact in contacts:
            customer = await follow_merges(session, contact.customer_id)
            if customer is not None and not customer.erased:
                customers[customer.id] = (customer, contact.contact_id)
        if len(customers) == 1:
            return next(iter(customers.values()))
        if len(customers) > 1:
            raise Problem(422, "Ambiguous customer", f"The {by} matches {len(customers)} customers; give customer_id.",
                          errors=[{"loc": ["body", by.split(".")[0]], "msg": "matches several customers", "type": "ambiguous"}],
                          candidates=sorted(customers))
    if not tried:
        raise Problem(422, "Customer required", "Give customer_id, phone or email.",
                      errors=[{"loc": ["body", "customer_id"], "msg": "customer_id, phone or email is required", "type": "missing"}])
    raise Problem(422, "Unknown customer", "No customer matches what was given.", tried=tried,
                  errors=[{"loc": ["body", t["by"].split(".")[0]], "msg": "no matching customer", "type": "not_found"} for t in tried])


# ---- filing ----------------------------------------------------------------------------------

async def load_rules(session: AsyncSession) -> list[routing.RoutingRule]:
    rows = (await session.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.position, RoutingRuleRow.id))).all()
    if not rows:
        return list(routing.DEFAULT_RULES)
    return [routing.RoutingRule(team=r.team_id, category=r.category, region=r.region, service_type=r.service_type, position=r.position,
                                name=r.name) for r in rows]


async def agents_on_shift(session: AsyncSession, team: Team, now: dt.datetime) -> list[routing.AgentLoad]:
    agents = (await session.scalars(select(Agent).where(Agent.team_id == team.id, Agent.active.is_(True)))).all()
    if not agents:
        return []
    shifts = (await session.scalars(select(AgentShift).where(AgentShift.agent_id.in_([a.id for a in agents])))).all()
    by_agent: dict[str, list[routing.Shift]] = {}
    for s in shifts:
        by_agent.setdefault(s.agent_id, []).append(routing.Shift(s.weekday, s.start_minute, s.end_minute))
    timezone = team.calendar.get("timezone", "Asia/Shanghai")
    present = [a for a in agents if routing.on_shift(by_agent.get(a.id, []), now, timezone)]
    if not present:
        return []
    loads = dict((await session.execute(
        select(Complaint.agent_id, func.count()).where(Complaint.agent_id.in_([a.id for a in present]),
                                                      Complaint.status.in_(OPEN_STATES)).group_by(Complaint.agent_id)
    )).all())
    return [routing.AgentLoad(a.id, int(loads.get(a.id, 0)), a.last_assigned_at, a.capacity, frozenset(a.skills or ()),
                              frozenset(a.languages or ())) for a in present]


async def choose_agent(session: AsyncSession, team: Team, now: dt.datetime, complaint: Complaint | None = None) -> str | None:
    """Pick an agent on shift, below capacity, preferring the complaint's category as a skill and its language
    (routing.eligible), by the team's strategy. The team row is locked (PostgreSQL) so that concurrent
    assignments in one team see each other's load and round-robin cursor."""
    # FOR NO KEY UPDATE: inserting a complaint takes KEY SHARE on its team, which this must not conflict with
    locked = await session.scalar(select(Team).where(Team.id == team.id).with_for_update(key_share=True)
                                  .execution_options(populate_existing=True))
    team = locked or team
    candidates = routing.eligible(await agents_on_shift(session, team, now), complaint.category if complaint else None,
                                  complaint.language if complaint else None)
    return routing.pick_agent(candidates, team.strategy, team.rr_cursor)  # type: ignore[arg-type]


async def _assign(session: AsyncSession, complaint: Complaint, team: Team, agent_id: str | None, *, now: dt.datetime,
                  actor: Actor, reason: str | None, settings: ComplaintsSettings, rule: dict | None = None) -> None:
    """`rule`: routing.rule_record of the rule that chose the team, kept on the assignment's timeline entry."""
    old_team = complaint.team_id
    if old_team is not None and old_team != team.id:
        await _rebase_clocks(session, complaint, now, old_team, team.id, settings)
    complaint.team_id = team.id
    complaint.agent_id = agent_id
    if agent_id is not None:
        agent = await session.get(Agent, agent_id)
        if agent is not None:
            agent.last_assigned_at = now
        team.rr_cursor = agent_id
        if complaint.status in ("new", "assigned"):
            complaint.status = "assigned"
    elif complaint.status in ("new", "assigned"):
        complaint.status = "new"  # waits in the team queue until an agent is on shift
    kind = "reassigned" if reason else "assigned"
    await add_timeline(session, complaint, kind, at=now, actor=actor, visibility="internal",
                       body=reason, data={"team": team.id, "agent": agent_id, "queued": agent_id is None,
                                          **({"rule": rule, "strategy": team.strategy} if rule is not None else {})})
    await emit(session, ComplaintAssigned(complaint_id=complaint.id, complaint_number=complaint.number, customer_id=complaint.customer_id,
                                          team=team.id, agent=agent_id, reason=reason or ("queued: no agent on shift" if agent_id is None else None),
                                          assigned_at=now), key=complaint.customer_id, producer=SERVICE_NAME, occurred_at=now)


async def file_complaint(session: AsyncSession, data: ComplaintCreate, *, settings: ComplaintsSettings, actor: Actor | None = None,
                         now: dt.datetime | None = None, channel: str | None = None, allow_unknown_customer: bool = False,
                         source_event_id: str | None = None) -> Complaint:
    now = now or utcnow()
    actor = actor or SYSTEM
    if data.category not in CATEGORIES:
        raise Problem(422, "Unknown category", f"{data.category!r} is not a complaint category.", allowed=list(CATEGORIES),
                      errors=[{"loc": ["body", "category"], "msg": f"must be one of {', '.join(CATEGORIES)}", "type": "enum"}])
    reporter = data.reporter
    if allow_unknown_customer and data.customer_id:
        customer = await follow_merges(session, data.customer_id)
        customer_id = customer.id if customer is not None else data.customer_id
        contact_id = None
    else:
        customer, contact_id = await resolve_customer(
            session, customer_id=data.customer_id, phone=data.phone, email=data.email,
            reporter_phone=reporter.phone if reporter else None, reporter_email=reporter.email if reporter else None)
        customer_id = customer.id
    tier = customer.tier if customer is not None else None
    credit = customer.credit_grade if customer is not None else None
    region = data.region or (customer.region if customer is not None else None)
    language = data.language
    if language is None and contact_id:
        contact = await session.get(DirectoryContact, contact_id)
        language = contact.language if contact is not None else None
    priority = compute_priority(data.category, data.description, data.claimed_amount, tier, credit)
    team_id, rule = routing.route(await load_rules(session), data.category, region, data.service_type)
    team = await get_or_create_team(session, team_id, settings)

    complaint = Complaint(
        id=str(uuid.uuid4()), number=new_number(now), customer_id=customer_id, contact_id=contact_id, category=data.category,
        priority=priority, channel=channel or data.channel, status="new", team_id=team.id, agent_id=None, region=region,
        service_type=data.service_type, description=data.description, desired_outcome=data.desired_outcome,
        claimed_amount=data.claimed_amount, attachments=[a.model_dump(mode="json") for a in data.attachments],
        reporter_name=reporter.name if reporter else None, reporter_phone=normalize_phone(reporter.phone) if reporter else None,
        reporter_email=normalize_email(reporter.email) if reporter else None, language=language or "zh-CN",
        tier_at_filing=tier, source_event_id=source_event_id, filed_at=now, reopen_count=0, version=1,
    )
    session.add(complaint)
    order_ids = list(dict.fromkeys(o.strip() for o in data.order_ids if o.strip()))
    tracking = list(dict.fromkeys(t.strip() for t in data.tracking_numbers if t.strip()))
    duplicate = await find_duplicate(session, customer_id, data.category, order_ids, now, settings, tracking)
    await session.flush()
    for kind, values in (("order", order_ids), ("tracking", tracking)):
        for value in values:
            session.add(ComplaintReference(complaint_id=complaint.id, kind=kind, value=value))

    calendar = BusinessCalendar.from_dict(team.calendar)
    first_target, resolution_target = settings.sla_targets.get(priority, DEFAULT_TARGETS[priority])
    for kind, target in (("first_response", first_target), ("resolution", resolution_target)):
        row = SlaClockRow(complaint_id=complaint.id, kind=kind, escalation_level=0)
        _store_clock(row, SlaClock.start(kind, target, now), calendar)
        session.add(row)

    await add_timeline(session, complaint, "filed", at=now, actor=actor, visibility="customer",
                       body=data.description, data={"channel": complaint.channel, "priority": priority, "category": data.category})
    await emit(session, ComplaintFiled(
        complaint_id=complaint.id, complaint_number=complaint.number, customer_id=customer_id, category=data.category,
        priority=priority, channel=complaint.channel, team=team.id, contact_id=contact_id, reporter_name=complaint.reporter_name,
        reporter_phone=complaint.reporter_phone, reporter_email=complaint.reporter_email, language=complaint.language,
        order_ids=order_ids, tracking_numbers=tracking, filed_at=now), key=customer_id, producer=SERVICE_NAME, occurred_at=now)
    if duplicate is not None:
        complaint.duplicate_of = duplicate.id
        await add_timeline(session, complaint, "possible_duplicate", at=now, visibility="internal",
                           body=f"Likely duplicate of {duplicate.number}", data={"complaint_id": duplicate.id, "number": duplicate.number})
        await add_timeline(session, duplicate, "possible_duplicate", at=now, visibility="internal",
                           body=f"Likely duplicate filed: {complaint.number}", data={"complaint_id": complaint.id, "number": complaint.number})
    agent_id = await choose_agent(session, team, now, complaint)
    await _assign(session, complaint, team, agent_id, now=now, actor=SYSTEM, reason=None, settings=settings,
                  rule=routing.rule_record(rule, team_id))
    await session.flush()
    return complaint


async def find_duplicate(session: AsyncSession, customer_id: str, category: str, order_ids: list[str], now: dt.datetime,
                         settings: ComplaintsSettings, tracking_numbers: list[str] = ()) -> Complaint | None:
    """An open complaint of the same customer and category sharing an order id or tracking number, filed within the window."""
    if not order_ids and not tracking_numbers:
        return None
    since = now - dt.timedelta(hours=settings.duplicate_window_hours)
    return await session.scalar(
        select(Complaint)
        .join(ComplaintReference, ComplaintReference.complaint_id == Complaint.id)
        .where(Complaint.customer_id == customer_id, Complaint.category == category, Complaint.filed_at >= since,
               Complaint.merged_into.is_(None), Complaint.status != "closed",
               ((ComplaintReference.kind == "order") & ComplaintReference.value.in_(order_ids))
               | ((ComplaintReference.kind == "tracking") & ComplaintReference.value.in_(list(tracking_numbers))))
        .order_by(Complaint.filed_at).limit(1)
    )


# ---- reading ---------------------------------------------------------------------------------

async def get_complaint(session: AsyncSession, complaint_id: str, *, for_update: bool = False) -> Complaint:
    if "\x00" in complaint_id:
        raise Problem(404, "Complaint not found", "No such complaint.")
    query = select(Complaint).where(Complaint.id == complaint_id)
    if for_update:
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE: timeline inserts may still reference it
    complaint = await session.scalar(query)
    if complaint is None:
        raise Problem(404, "Complaint not found", f"No complaint with id {complaint_id}.")
    return complaint


async def timeline(session: AsyncSession, complaint_id: str, *, customer_view: bool) -> list[TimelineEntry]:
    query = select(TimelineEntry).where(TimelineEntry.complaint_id == complaint_id)
    if customer_view:
        query = query.where(TimelineEntry.visibility == "customer")
    return list((await session.scalars(query.order_by(TimelineEntry.at, TimelineEntry.id))).all())


async def timelines(session: AsyncSession, complaint_ids: list[str], *, customer_view: bool) -> dict[str, list[TimelineEntry]]:
    """timeline() for a page of complaints in one query."""
    out: dict[str, list[TimelineEntry]] = {cid: [] for cid in complaint_ids}
    if not complaint_ids:
        return out
    query = select(TimelineEntry).where(TimelineEntry.complaint_id.in_(set(complaint_ids)))
    if customer_view:
        query = query.where(TimelineEntry.visibility == "customer")
    for entry in (await session.scalars(query.order_by(TimelineEntry.at, TimelineEntry.id))).all():
        out[entry.complaint_id].append(entry)
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
    parts = [select(  # the first SELECT gives the result column types
        r.complaint_id.label("cid"), literal_column("'r'", String).label("src"), r.id.label("rid"), r.kind.label("kind"),
        r.value.label("value"), _null(String(10)).label("visibility"), _null(String(100)).label("actor_id"), _null(Text).label("body"),
        _null(JSON).label("data"), _null(UTCDateTime).label("at"), _null(Integer).label("target_minutes"),
        _null(UTCDateTime).label("deadline_at"), _null(UTCDateTime).label("stopped_at"), _null(Boolean).label("paused"),
        _null(Integer).label("escalation_level"), _null(UTCDateTime).label("breached_at"),
    ).where(_member_of(r.complaint_id, "ids", arrays))]
    timeline_part = select(
        t.complaint_id, literal_column("'t'", String), t.id, t.kind, _null(Text), t.visibility, t.actor_id, t.body, t.data, t.at,
        _null(Integer), _null(UTCDateTime), _null(UTCDateTime), _null(Boolean), _null(Integer), _null(UTCDateTime),
    ).where(_member_of(t.complaint_id, "ids", arrays))
    if customer_view:
        timeline_part = timeline_part.where(t.visibility == "customer")
    parts.append(timeline_part)
    if with_clocks:
        parts.append(select(
            c.complaint_id, literal_column("'c'", String), c.id, c.kind, _null(Text), _null(String(10)), _null(String(100)), _null(Text),
            _null(JSON), _null(UTCDateTime), c.target_minutes, c.deadline_at, c.stopped_at, c.paused, c.escalation_level, c.breached_at,
        ).where(_member_of(c.complaint_id, "ids", arrays)))
    return union_all(*parts)


async def page_details(reader: RowReader, complaint_ids: list[str], *, customer_view: bool, with_clocks: bool = True) -> tuple[
        dict[str, tuple[list[str], list[str]]], dict[str, list[SimpleNamespace]], dict[str, list[SimpleNamespace]]]:
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
        clocks[row["cid"]].append(SimpleNamespace(kind=row["kind"], target_minutes=row["target_minutes"], deadline_at=row["deadline_at"],
                                                  stopped_at=row["stopped_at"], paused=row["paused"],
                                                  escalation_level=row["escalation_level"], breached_at=row["breached_at"]))
    for row in sorted((x for x in rows if x["src"] == "t"), key=lambda x: (x["at"], x["rid"])):
        entries[row["cid"]].append(SimpleNamespace(at=row["at"], kind=row["kind"], visibility=row["visibility"],
                                                   actor_id=row["actor_id"], body=row["body"], data=row["data"]))
    return refs, clocks, entries


# what a lookup page shows of a complaint (ComplaintOut / CustomerComplaintOut): plain rows, no ORM objects
LOOKUP_COLUMNS = tuple(Complaint.__table__.c[name] for name in (
    "id", "number", "customer_id", "category", "priority", "channel", "status", "team_id", "agent_id", "description",
    "desired_outcome", "claimed_amount", "attachments", "reporter_name", "reporter_phone", "reporter_email", "language",
    "duplicate_of", "merged_into", "filed_at", "first_response_at", "resolved_at", "closed_at", "outcome",
    "compensation_amount", "reopen_count", "survey_score", "contact_id",  # contact_id: the audit trail's subject
))
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
        query = query.where(c.id.in_(select(references.complaint_id).where(references.kind.in_([literal("tracking"), literal("order")]),
                                                                          references.value == bindparam("tracking"))))
    return query.order_by(c.filed_at.desc()).limit(bindparam("limit", type_=Integer))


async def lookup(reader: RowReader, *, number: str | None = None, customer_id: str | None = None, phone: str | None = None,
                 tracking_number: str | None = None, limit: int = 50) -> Sequence[Mapping[str, Any]]:
    """Complaints by number, customer (following merges), phone (reporter or a contact's customer) or tracking number/order
    id, newest first: rows of LOOKUP_COLUMNS as mappings. `reader` comes from Database.read() (the API: no ORM objects,
    no transaction) or wraps a session (SessionReader)."""
    if not any((number, customer_id, phone, tracking_number)):
        raise Problem(422, "Lookup needs a key", "Give number, customer_id, phone or tracking_number.",
                      errors=[{"loc": ["query"], "msg": "one of number, customer_id, phone, tracking_number is required", "type": "missing"}])
    values: dict = {"limit": limit}
    if number:
        values["number"] = number.strip().upper()
    if customer_id:
        survivor = await _merge_survivor(reader, customer_id)
        ids = {customer_id} | ({survivor} if survivor is not None else set())
        merged = [row["id"] for row in await reader.rows(_merged_into_statement(reader.arrays), {"ids": list(ids)})]
        values["customer_ids"] = sorted(ids | set(merged))
    if phone:
        values["phone"] = normalized = normalize_phone(phone)
        values["phone_owners"] = sorted({row["id"] for row in await reader.rows(_PHONE_OWNERS, {"phone": normalized})})
    if tracking_number:
        values["tracking"] = tracking_number.strip()
    statement = _lookup_statement(bool(number), bool(customer_id), bool(phone), bool(tracking_number), reader.arrays)
    return await reader.rows(statement, values)


# ---- agent actions ---------------------------------------------------------------------------

def authorize(actor: Actor | None, complaint: Complaint, action: str = "handle") -> Actor:
    if actor is None:
        raise Problem(401, "Actor required", "X-Actor-Id and X-Actor-Role headers are required (set by the gateway).")
    if not actor.is_staff:
        raise Problem(403, "Forbidden", f"Role {actor.role!r} cannot act on complaints.")
    if actor.role in CROSS_TEAM_ROLES:
        return actor
    if actor.role == "account_manager":
        if action in ACCOUNT_MANAGER_ACTIONS:
            return actor
        raise Problem(403, "Forbidden", "Account managers can add notes and customer messages; the handling team changes the complaint.")
    if complaint.team_id is not None and actor.team != complaint.team_id:
        raise Problem(403, "Another team's complaint",
                      f"This complaint belongs to team {complaint.team_id!r}; acting on it needs the supervisor role.",
                      complaint_team=complaint.team_id, actor_team=actor.team)
    return actor


async def _rebase_clocks(session: AsyncSession, complaint: Complaint, now: dt.datetime, old_team: str | None, new_team: str | None,
                         settings: ComplaintsSettings) -> None:
    """Count time up to now in the old team's calendar, then continue in the new team's."""
    old_calendar = await team_calendar(session, old_team, settings)
    new_calendar = await team_calendar(session, new_team, settings)
    for row in await clocks_of(session, complaint.id):
        clock = _clock_from_row(row)
        if clock.running:
            clock.pause(old_calendar, now)
            clock.resume(now)
        _store_clock(row, clock, new_calendar)


async def _update_clocks(session: AsyncSession, complaint: Complaint, now: dt.datetime, settings: ComplaintsSettings, action) -> None:
    calendar = await team_calendar(session, complaint.team_id, settings)
    for row in await clocks_of(session, complaint.id):
        clock = _clock_from_row(row)
        action(row, clock, calendar)
        _store_clock(row, clock, calendar)


async def _set_status(session: AsyncSession, complaint: Complaint, target: str, now: dt.datetime, settings: ComplaintsSettings,
                      actor: Actor, reason: str | None = None) -> None:
    current = complaint.status
    check_transition(current, target)
    if current == target:
        return
    if target == "waiting_on_customer":
        await _update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.pause(cal, now))
    elif current == "waiting_on_customer" and target in OPEN_STATES:
        await _update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.resume(now))
    complaint.status = target
    complaint.version += 1
    await add_timeline(session, complaint, "status_changed", at=now, actor=actor, visibility="customer", body=reason,
                       data={"from": current, "to": target})


async def assign(session: AsyncSession, complaint_id: str, *, team_id: str | None, agent_id: str | None, reason: str | None,
                 actor: Actor | None, settings: ComplaintsSettings, now: dt.datetime | None = None) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    if complaint.status not in OPEN_STATES:
        raise Problem(409, "Invalid transition", f"A {complaint.status} complaint cannot be assigned.", current_status=complaint.status)
    reassignment = complaint.agent_id is not None or (team_id is not None and team_id != complaint.team_id)
    if reassignment and not reason:
        raise Problem(422, "Reason required", "A reassignment needs a reason.",
                      errors=[{"loc": ["body", "reason"], "msg": "required when reassigning", "type": "missing"}])
    team = await get_or_create_team(session, team_id or complaint.team_id or routing.DEFAULT_TEAM, settings)
    if agent_id is not None:
        agent = await session.get(Agent, agent_id)
        if agent is None or not agent.active:
            raise Problem(422, "Unknown agent", f"No active agent {agent_id!r}.",
                          errors=[{"loc": ["body", "agent_id"], "msg": "unknown or inactive agent", "type": "not_found"}])
        if agent.team_id != team.id:
            raise Problem(422, "Agent not in team", f"Agent {agent_id!r} belongs to team {agent.team_id!r}, not {team.id!r}.",
                          errors=[{"loc": ["body", "agent_id"], "msg": "agent is not in the team", "type": "mismatch"}])
    else:
        agent_id = await choose_agent(session, team, now, complaint)
    await _assign(session, complaint, team, agent_id, now=now, actor=actor, reason=reason if reassignment else None, settings=settings)
    complaint.version += 1
    return complaint


async def reply(session: AsyncSession, complaint_id: str, body: str, *, actor: Actor | None, settings: ComplaintsSettings,
                now: dt.datetime | None = None) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    if complaint.status == "closed":
        raise Problem(409, "Complaint closed", "Reopen the complaint before replying.", current_status=complaint.status)
    await add_timeline(session, complaint, "reply", at=now, actor=actor, visibility="customer", body=body)
    await _record_first_response(session, complaint, now, settings)
    if complaint.status == "assigned":
        await _set_status(session, complaint, "in_progress", now, settings, actor)
    return complaint


async def _record_first_response(session: AsyncSession, complaint: Complaint, now: dt.datetime, settings: ComplaintsSettings) -> None:
    if complaint.first_response_at is not None:
        return
    complaint.first_response_at = now
    calendar = await team_calendar(session, complaint.team_id, settings)
    for row in await clocks_of(session, complaint.id):
        if row.kind == "first_response":
            clock = _clock_from_row(row)
            clock.stop(calendar, now)
            complaint.first_response_within_sla = clock.within_target(calendar, now)
            _store_clock(row, clock, calendar)


async def note(session: AsyncSession, complaint_id: str, body: str, *, actor: Actor | None, now: dt.datetime | None = None) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id)
    actor = authorize(actor, complaint, "note")
    await add_timeline(session, complaint, "note", at=now, actor=actor, visibility="internal", body=body)
    return complaint


async def customer_message(session: AsyncSession, complaint_id: str, body: str, *, actor: Actor | None, settings: ComplaintsSettings,
                           now: dt.datetime | None = None) -> Complaint:
    """The customer adds information. A complaint waiting on the customer goes back to work (clocks resume)."""
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    if actor is None or (actor.role == "customer" and actor.id != complaint.customer_id):
        raise Problem(404, "Complaint not found", f"No complaint with id {complaint_id}.")
    if actor.role != "customer":
        actor = authorize(actor, complaint, "customer_message")  # staff recording what the customer said on the phone
    if complaint.status in ("resolved", "closed"):
        raise Problem(409, "Complaint not open", "Reopen the complaint to add to it.", current_status=complaint.status)
    await add_timeline(session, complaint, "customer_message", at=now, actor=actor, visibility="customer", body=body)
    if complaint.status == "waiting_on_customer":
        await _set_status(session, complaint, "in_progress", now, settings, actor, "customer replied")
    return complaint


async def change_status(session: AsyncSession, complaint_id: str, target: str, *, reason: str | None, actor: Actor | None,
                        settings: ComplaintsSettings, now: dt.datetime | None = None) -> Complaint:
    from crm_complaints.complaints.states import MANUAL_TARGETS, STATES

    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    if target not in STATES:
        raise Problem(422, "Unknown status", f"{target!r} is not a status.", allowed=list(STATES),
                      errors=[{"loc": ["body", "status"], "msg": "unknown status", "type": "enum"}])
    if target not in MANUAL_TARGETS:
        check_transition(complaint.status, target)  # 409 when not allowed at all
        raise Problem(409, "Use the action endpoint", f"Move to {target!r} through its own action (assign, resolve, close, reopen).",
                      current_status=complaint.status)
    await _set_status(session, complaint, target, now, settings, actor, reason)
    return complaint


async def resolve(session: AsyncSession, complaint_id: str, *, outcome: str, compensation_amount: Decimal | None, message: str | None,
                  actor: Actor | None, settings: ComplaintsSettings, now: dt.datetime | None = None) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    check_transition(complaint.status, "resolved")
    if message:
        await add_timeline(session, complaint, "reply", at=now, actor=actor, visibility="customer", body=message)
    await _record_first_response(session, complaint, now, settings)
    if complaint.status == "waiting_on_customer":
        await _update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.resume(now))
    calendar = await team_calendar(session, complaint.team_id, settings)
    within = True
    for row in await clocks_of(session, complaint.id):
        clock = _clock_from_row(row)
        if row.kind == "resolution":
            clock.stop(calendar, now)
            within = clock.within_target(calendar, now)
        _store_clock(row, clock, calendar)
    previous = complaint.status
    complaint.status = "resolved"
    complaint.resolved_at = now
    complaint.outcome = outcome
    complaint.compensation_amount = compensation_amount
    complaint.resolved_by = actor.id if actor.role != "system" else complaint.agent_id
    complaint.resolution_within_sla = within
    complaint.survey_token = secrets.token_urlsafe(24)
    complaint.version += 1
    await add_timeline(session, complaint, "resolved", at=now, actor=actor, visibility="customer", body=outcome,
                       data={"from": previous, "compensation_amount": str(compensation_amount) if compensation_amount is not None else None,
                             "within_sla": within})
    await emit(session, ComplaintResolved(
        complaint_id=complaint.id, complaint_number=complaint.number, customer_id=complaint.customer_id, outcome=outcome,
        compensation_amount=compensation_amount, within_sla=within, survey_url=survey_url(complaint, settings),
        contact_id=complaint.contact_id, resolved_at=now), key=complaint.customer_id, producer=SERVICE_NAME, occurred_at=now)
    return complaint


def survey_url(complaint: Complaint, settings: ComplaintsSettings) -> str:
    return f"{settings.survey_base_url.rstrip('/')}/{complaint.id}?token={survey_links.link_token(complaint, settings)}"


async def reopen(session: AsyncSession, complaint_id: str, *, reason: str | None, actor: Actor | None, settings: ComplaintsSettings,
                 now: dt.datetime | None = None, customer_id: str | None = None) -> Complaint:
    """Reopen within the window. Staff, or the customer who owns it (customer_id from the gateway)."""
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    if actor is not None and actor.role == "customer":
        if customer_id is None or customer_id != complaint.customer_id:
            raise Problem(403, "Forbidden", "Customers can reopen only their own complaints.")
    else:
        actor = authorize(actor, complaint)
    check_reopen(complaint.status, complaint.resolved_at, now, settings.reopen_window_days)
    previous = complaint.status
    target = "in_progress"
    complaint.status = target
    complaint.closed_at = None
    complaint.reopen_count += 1
    complaint.version += 1
    await _update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.restart(now))
    await add_timeline(session, complaint, "reopened", at=now, actor=actor, visibility="customer", body=reason,
                       data={"from": previous, "to": target})
    await emit(session, ComplaintReopened(complaint_id=complaint.id, complaint_number=complaint.number, customer_id=complaint.customer_id,
                                          reason=reason, reopened_at=now), key=complaint.customer_id, producer=SERVICE_NAME, occurred_at=now)
    return complaint


async def close(session: AsyncSession, complaint_id: str, *, actor: Actor | None, settings: ComplaintsSettings,
                now: dt.datetime | None = None, reason: str | None = None) -> Complaint:
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    actor = authorize(actor, complaint)
    if complaint.status != "resolved":
        raise Problem(409, "Invalid transition", f"Only a resolved complaint can be closed (this one is {complaint.status!r}).",
                      current_status=complaint.status, allowed=["resolved"])
    await _close(session, complaint, now, settings, actor, reason)
    return complaint


async def _close(session: AsyncSession, complaint: Complaint, now: dt.datetime, settings: ComplaintsSettings, actor: Actor,
                 reason: str | None) -> None:
    previous = complaint.status
    check_transition(previous, "closed")
    await _update_clocks(session, complaint, now, settings, lambda row, clock, cal: clock.stop(cal, now))
    complaint.status = "closed"
    complaint.closed_at = now
    complaint.version += 1
    await add_timeline(session, complaint, "closed", at=now, actor=actor, visibility="customer", body=reason, data={"from": previous})
    await emit(session, ComplaintClosed(complaint_id=complaint.id, complaint_number=complaint.number, customer_id=complaint.customer_id,
                                        closed_at=now), key=complaint.customer_id, producer=SERVICE_NAME, occurred_at=now)


async def merge(session: AsyncSession, source_id: str, target_id: str, *, reason: str | None, actor: Actor | None,
                settings: ComplaintsSettings, now: dt.datetime | None = None) -> Complaint:
    """Fold a duplicate (source) into the surviving complaint (target); the source is closed."""
    now = now or utcnow()
    if source_id == target_id:
        raise Problem(422, "Cannot merge into itself", errors=[{"loc": ["body", "into"], "msg": "same complaint", "type": "value_error"}])
    source = await get_complaint(session, source_id, for_update=True)
    target = await get_complaint(session, target_id, for_update=True)
    actor = authorize(actor, source)
    authorize(actor, target)
    if source.customer_id != target.customer_id:
        raise Problem(409, "Different customers", "Only complaints of the same customer can be merged.")
    if source.status == "closed" or target.status == "closed":
        raise Problem(409, "Complaint closed", "Closed complaints cannot be merged.")
    existing = set((await session.execute(select(ComplaintReference.kind, ComplaintReference.value)
                                          .where(ComplaintReference.complaint_id == target.id))).all())
    for kind, value in (await session.execute(select(ComplaintReference.kind, ComplaintReference.value)
                                              .where(ComplaintReference.complaint_id == source.id))).all():
        if (kind, value) not in existing:
            session.add(ComplaintReference(complaint_id=target.id, kind=kind, value=value))
    source.merged_into = target.id
    await add_timeline(session, target, "merged", at=now, actor=actor, visibility="customer",
                       body=f"Complaint {source.number} merged into this one", data={"merged": source.id, "reason": reason})
    await _close(session, source, now, settings, actor, reason or f"merged into {target.number}")
    return target


async def answer_survey(session: AsyncSession, complaint_id: str, *, score: int, comment: str | None, token: str | None,
                        actor: Actor | None, settings: ComplaintsSettings, now: dt.datetime | None = None) -> Complaint:
    """Staff recording a phone callback need no token; anyone else needs the signed link of this resolution."""
    now = now or utcnow()
    complaint = await get_complaint(session, complaint_id, for_update=True)
    staff = actor is not None and actor.is_staff
    if not staff:
        survey_links.check_link_token(complaint, token, settings, now)  # InvalidSurveyLink 403, SurveyLinkExpired 410
    if complaint.status not in ("resolved", "closed") or complaint.resolved_at is None:
        raise Problem(409, "Not resolved", "The survey opens after the complaint is resolved.", current_status=complaint.status)
    if complaint.survey_answered_at is not None and complaint.survey_answered_at >= complaint.resolved_at:
        raise Problem(409, "Survey already answered", "This resolution has already been rated.")
    complaint.survey_score = score
    complaint.survey_comment = comment
    complaint.survey_answered_at = now
    agent = complaint.resolved_by or complaint.agent_id
    await add_timeline(session, complaint, "survey", at=now, actor=actor, visibility="customer", body=comment, data={"score": score})
    await emit(session, SurveyAnswered(complaint_id=complaint.id, customer_id=complaint.customer_id, score=score, comment=comment,
                                       team=complaint.team_id, agent=agent, answered_at=now),
               key=complaint.customer_id, producer=SERVICE_NAME, occurred_at=now)
    return complaint


# ---- automatic complaints from TMS events --------------------------------------------------------

_SEVERITY_ORDER = {"delay": 1, "damage": 2, "loss": 3}


async def open_from_shipment_event(session: AsyncSession, payload, *, event_id: str, settings: ComplaintsSettings,
                                   now: dt.datetime | None = None) -> tuple[Complaint | None, str]:
    """ShipmentDamaged / ShipmentLost / ShipmentDelayed (past the threshold) -> a complaint for that customer and order.

    Returns (complaint, "filed" | "attached" | "ignored"). An open complaint of the same customer for the
    same order gets the event on its timeline instead of a second complaint.
    """
    from crm_complaints.complaints.schemas import ComplaintCreate as _Create

    now = now or utcnow()
    kind = payload.event_type
    amount = None
    if kind == "ShipmentDamaged":
        category = "damage"
        amount = payload.estimated_loss
        text = payload.description or "Shipment reported damaged"
        description = f"[TMS] Shipment damaged (order {payload.order_id}): {text}"
    elif kind == "ShipmentLost":
        category = "loss"
        amount = payload.declared_value
        description = f"[TMS] Shipment lost (order {payload.order_id})"
    elif kind == "ShipmentDelayed":
        if payload.delay_minutes < settings.delay_threshold_minutes:
            return None, "ignored"
        category = "delay"
        description = f"[TMS] Shipment delayed {payload.delay_minutes} minutes (order {payload.order_id})" + (
            f": {payload.reason}" if payload.reason else "")
    else:
        return None, "ignored"
    survivor = await follow_merges(session, payload.customer_id)
    customer_id = survivor.id if survivor is not None else payload.customer_id

    existing = await session.scalar(
        select(Complaint).join(ComplaintReference, ComplaintReference.complaint_id == Complaint.id)
        .where(Complaint.customer_id == customer_id, Complaint.status.in_(OPEN_STATES), Complaint.merged_into.is_(None),
               ComplaintReference.kind == "order", ComplaintReference.value == payload.order_id)
        .order_by(Complaint.filed_at).limit(1).with_for_update()
    )
    if existing is not None:
        if payload.tracking_number:
            known = await session.scalar(select(ComplaintReference.id).where(
                ComplaintReference.complaint_id == existing.id, ComplaintReference.kind == "tracking",
                ComplaintReference.value == payload.tracking_number))
            if known is None:
                session.add(ComplaintReference(complaint_id=existing.id, kind="tracking", value=payload.tracking_number))
        if _SEVERITY_ORDER.get(category, 0) > _SEVERITY_ORDER.get(existing.category, 0):
            raised = compute_priority(category, description, amount, survivor.tier if survivor else None,
                                      survivor.credit_grade if survivor else None)
            existing.priority = min(existing.priority, raised)
        await add_timeline(session, existing, "shipment_event", at=now, actor=SYSTEM, visibility="internal", body=description,
                           data={"event_type": kind, "event_id": event_id, "order_id": payload.order_id})
        existing.version += 1
        return existing, "attached"
    data = _Create(customer_id=customer_id, order_ids=[payload.order_id],
                   tracking_numbers=[payload.tracking_number] if payload.tracking_number else [], category=category,
                   description=description, channel="web", claimed_amount=amount)
    complaint = await file_complaint(session, data, settings=settings, now=now, channel="tms", allow_unknown_customer=True,
                                     source_event_id=event_id)
    return complaint, "filed"


async def reprioritize_open(session: AsyncSession, customer_id: str, *, settings: ComplaintsSettings,
                            now: dt.datetime | None = None) -> list[Complaint]:
    """After a tier or credit change, raise the priority of the customer's open complaints where the rules now say so.

    Priorities only go up (a downgrade never loosens a promise already made). Running and paused clocks take
    the new targets, keeping the time already used; stopped clocks keep theirs.
    """
    now = now or utcnow()
    customer = await follow_merges(session, customer_id)
    if customer is None:
        return []
    raised: list[Complaint] = []
    open_complaints = (await session.scalars(
        select(Complaint).where(Complaint.customer_id == customer.id, Complaint.status.in_(OPEN_STATES), Complaint.merged_into.is_(None))
        .with_for_update(key_share=True)
    )).all()
    for complaint in open_complaints:
        new = compute_priority(complaint.category, complaint.description, complaint.claimed_amount, customer.tier, customer.credit_grade)
        if new >= complaint.priority:
            continue
        old = complaint.priority
        complaint.priority = new
        complaint.version += 1
        targets = dict(zip(("first_response", "resolution"), settings.sla_targets.get(new, DEFAULT_TARGETS[new])))
        calendar = await team_calendar(session, complaint.team_id, settings)
        for row in await clocks_of(session, complaint.id):
            clock = _clock_from_row(row)
            if clock.stopped_at is None:
                clock.retarget(targets[row.kind], calendar, now)
                _store_clock(row, clock, calendar)
        await add_timeline(session, complaint, "reprioritized", at=now, actor=SYSTEM, visibility="internal",
                           body=f"Priority {old} -> {new} (tier {customer.tier}, credit {customer.credit_grade})",
                           data={"from": old, "to": new})
        raised.append(complaint)
    return raised
