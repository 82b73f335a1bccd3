"""Intake: a complaint filed by a channel or opened from a TMS shipment incident. The customer is found in the local
directory, the complaint prioritised, routed to a team, given its SLA clocks and assigned to an agent on shift
(or queued in the team until one is)."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.contacts import email_key, phone_key
from crm_common.db import dialect_insert, utcnow
from crm_complaints.complaints import publish, routing
from crm_complaints.complaints.access import SYSTEM, Actor
from crm_complaints.complaints.clocks import rebase_clocks, store_clock
from crm_complaints.complaints.errors import InvalidComplaintInput, field_error
from crm_complaints.complaints.lookup import follow_merges
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
)
from crm_complaints.complaints.priority import CATEGORIES, compute_priority
from crm_complaints.complaints.schemas import ComplaintCreate
from crm_complaints.complaints.sla import DEFAULT_TARGETS, BusinessCalendar, SlaClock
from crm_complaints.complaints.states import OPEN_STATES
from crm_complaints.complaints.timeline import add_timeline
from crm_complaints.settings import ComplaintsSettings
from crm_complaints.setup import holidays as mainland_holidays

_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_number(now: dt.datetime) -> str:
    """CP, the filing date (YYMMDD) and six random Crockford base32 characters: CP261126X7K2QM."""
    return "CP" + now.strftime("%y%m%d") + "".join(secrets.choice(_B32) for _ in range(6))


async def resolve_customer(
    session: AsyncSession,
    *,
    customer_id: str | None,
    phone: str | None,
    email: str | None,
    reporter_phone: str | None = None,
    reporter_email: str | None = None,
) -> tuple[DirectoryCustomer, str | None]:
    """The customer (and contact) a complaint belongs to; InvalidComplaintInput listing what was tried when nobody matches."""
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
            normalized = phone_key(value)
            condition = DirectoryContact.phone == normalized
        else:
            normalized = email_key(value)
            condition = DirectoryContact.email == normalized
        tried.append({"by": by, "value": normalized})
        if normalized is None:  # no digits or an empty address: comparing with NULL would match every contact without one
            continue
        contacts = (await session.scalars(select(DirectoryContact).where(condition))).all()
        customers = {}
        for contact in contacts:
            customer = await follow_merges(session, contact.customer_id)
            if customer is not None and not customer.erased:
                customers[customer.id] = (customer, contact.contact_id)
        if len(customers) == 1:
            return next(iter(customers.values()))
        if len(customers) > 1:
            raise InvalidComplaintInput(
                f"The {by} matches {len(customers)} customers; give customer_id.",
                title="Ambiguous customer",
                errors=[field_error("body", by.split(".")[0], msg="matches several customers", type_="ambiguous")],
                candidates=sorted(customers),
            )
    if not tried:
        raise InvalidComplaintInput(
            "Give customer_id, phone or email.",
            title="Customer required",
            errors=[field_error("body", "customer_id", msg="customer_id, phone or email is required", type_="missing")],
        )
    raise InvalidComplaintInput(
        "No customer matches what was given.",
        title="Unknown customer",
        tried=tried,
        errors=[field_error("body", t["by"].split(".")[0], msg="no matching customer", type_="not_found") for t in tried],
    )


async def load_rules(session: AsyncSession) -> list[routing.RoutingRule]:
    rows = (await session.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.position, RoutingRuleRow.id))).all()
    if not rows:
        return list(routing.DEFAULT_RULES)
    return [
        routing.RoutingRule(
            team=r.team_id, category=r.category, region=r.region, service_type=r.service_type, position=r.position, name=r.name
        )
        for r in rows
    ]


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
    loads = dict(
        (
            await session.execute(
                select(Complaint.agent_id, func.count())
                .where(Complaint.agent_id.in_([a.id for a in present]), Complaint.status.in_(OPEN_STATES))
                .group_by(Complaint.agent_id)
            )
        ).all()
    )
    return [
        routing.AgentLoad(
            a.id, int(loads.get(a.id, 0)), a.last_assigned_at, a.capacity, frozenset(a.skills or ()), frozenset(a.languages or ())
        )
        for a in present
    ]


async def choose_agent(session: AsyncSession, team: Team, now: dt.datetime, complaint: Complaint | None = None) -> str | None:
    """Pick an agent on shift, below capacity, preferring the complaint's category as a skill and its language
    (routing.eligible), by the team's strategy. The team row is locked (PostgreSQL) so that concurrent
    assignments in one team see each other's load and round-robin cursor."""
    # FOR NO KEY UPDATE: inserting a complaint takes KEY SHARE on its team, which this must not conflict with
    locked = await session.scalar(
        select(Team).where(Team.id == team.id).with_for_update(key_share=True).execution_options(populate_existing=True)
    )
    team = locked or team
    candidates = routing.eligible(
        await agents_on_shift(session, team, now), complaint.category if complaint else None, complaint.language if complaint else None
    )
    return routing.pick_agent(candidates, team.strategy, team.rr_cursor)  # type: ignore[arg-type]


async def get_or_create_team(session: AsyncSession, team_id: str, settings: ComplaintsSettings) -> Team:
    """The team a rule routes to; created with the default calendar (and this and next year's mainland holidays) when
    nobody has set it up yet."""
    team = await session.get(Team, team_id)
    if team is None:  # insert unless a concurrent PUT or filing created it meanwhile (no UNIQUE conflict either way)
        await session.execute(
            dialect_insert(session, Team)
            .values(
                id=team_id,
                name=team_id.replace("_", " ").title(),
                calendar=mainland_holidays.prefill(BusinessCalendar(timezone=settings.default_timezone).to_dict(), utcnow().date()),
                strategy="least_load",
            )
            .on_conflict_do_nothing(index_elements=[Team.id])
        )
        team = await session.get(Team, team_id)
    return team


async def assign_to(
    session: AsyncSession,
    complaint: Complaint,
    team: Team,
    agent_id: str | None,
    *,
    now: dt.datetime,
    actor: Actor,
    reason: str | None,
    settings: ComplaintsSettings,
    rule: dict | None = None,
) -> None:
    """Give the complaint to `team` and `agent_id` (None: it waits in the team's queue); the clocks move to the new
    team's calendar. A `reason` makes it a reassignment. `rule`: routing.rule_record of the rule that chose the team,
    kept on the assignment's timeline entry."""
    old_team = complaint.team_id
    if old_team is not None and old_team != team.id:
        await rebase_clocks(session, complaint, now, old_team, team.id, settings)
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
    await add_timeline(
        session,
        complaint,
        kind,
        at=now,
        actor=actor,
        visibility="internal",
        body=reason,
        data={
            "team": team.id,
            "agent": agent_id,
            "queued": agent_id is None,
            **({"rule": rule, "strategy": team.strategy} if rule is not None else {}),
        },
    )
    await publish.assigned(session, complaint, team_id=team.id, agent_id=agent_id, reason=reason, now=now)


async def file_complaint(
    session: AsyncSession,
    data: ComplaintCreate,
    *,
    settings: ComplaintsSettings,
    actor: Actor | None = None,
    now: dt.datetime | None = None,
    channel: str | None = None,
    allow_unknown_customer: bool = False,
    source_event_id: str | None = None,
) -> Complaint:
    now = now or utcnow()
    actor = actor or SYSTEM
    if data.category not in CATEGORIES:
        raise InvalidComplaintInput(
            f"{data.category!r} is not a complaint category.",
            title="Unknown category",
            allowed=list(CATEGORIES),
            errors=[field_error("body", "category", msg=f"must be one of {', '.join(CATEGORIES)}", type_="enum")],
        )
    reporter = data.reporter
    if allow_unknown_customer and data.customer_id:
        customer = await follow_merges(session, data.customer_id)
        customer_id = customer.id if customer is not None else data.customer_id
        contact_id = None
    else:
        customer, contact_id = await resolve_customer(
            session,
            customer_id=data.customer_id,
            phone=data.phone,
            email=data.email,
            reporter_phone=reporter.phone if reporter else None,
            reporter_email=reporter.email if reporter else None,
        )
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
        id=str(uuid.uuid4()),
        number=new_number(now),
        customer_id=customer_id,
        contact_id=contact_id,
        category=data.category,
        priority=priority,
        channel=channel or data.channel,
        status="new",
        team_id=team.id,
        agent_id=None,
        region=region,
        service_type=data.service_type,
        description=data.description,
        desired_outcome=data.desired_outcome,
        claimed_amount=data.claimed_amount,
        attachments=[a.model_dump(mode="json") for a in data.attachments],
        reporter_name=reporter.name if reporter else None,
        reporter_phone=phone_key(reporter.phone) if reporter else None,
        reporter_email=email_key(reporter.email) if reporter else None,
        language=language or "zh-CN",
        tier_at_filing=tier,
        source_event_id=source_event_id,
        filed_at=now,
        reopen_count=0,
        version=1,
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
        store_clock(row, SlaClock.start(kind, target, now), calendar)
        session.add(row)

    await add_timeline(
        session,
        complaint,
        "filed",
        at=now,
        actor=actor,
        visibility="customer",
        body=data.description,
        data={"channel": complaint.channel, "priority": priority, "category": data.category},
    )
    await publish.filed(session, complaint, order_ids=order_ids, tracking_numbers=tracking, now=now)
    if duplicate is not None:
        complaint.duplicate_of = duplicate.id
        await add_timeline(
            session,
            complaint,
            "possible_duplicate",
            at=now,
            visibility="internal",
            body=f"Likely duplicate of {duplicate.number}",
            data={"complaint_id": duplicate.id, "number": duplicate.number},
        )
        await add_timeline(
            session,
            duplicate,
            "possible_duplicate",
            at=now,
            visibility="internal",
            body=f"Likely duplicate filed: {complaint.number}",
            data={"complaint_id": complaint.id, "number": complaint.number},
        )
    agent_id = await choose_agent(session, team, now, complaint)
    await assign_to(
        session, complaint, team, agent_id, now=now, actor=SYSTEM, reason=None, settings=settings, rule=routing.rule_record(rule, team_id)
    )
    await session.flush()
    return complaint


async def find_duplicate(
    session: AsyncSession,
    customer_id: str,
    category: str,
    order_ids: list[str],
    now: dt.datetime,
    settings: ComplaintsSettings,
    tracking_numbers: list[str] = (),
) -> Complaint | None:
    """An open complaint of the same customer and category sharing an order id or tracking number, filed within the window."""
    if not order_ids and not tracking_numbers:
        return None
    since = now - dt.timedelta(hours=settings.duplicate_window_hours)
    return await session.scalar(
        select(Complaint)
        .join(ComplaintReference, ComplaintReference.complaint_id == Complaint.id)
        .where(
            Complaint.customer_id == customer_id,
            Complaint.category == category,
            Complaint.filed_at >= since,
            Complaint.merged_into.is_(None),
            Complaint.status != "closed",
            ((ComplaintReference.kind == "order") & ComplaintReference.value.in_(order_ids))
            | ((ComplaintReference.kind == "tracking") & ComplaintReference.value.in_(list(tracking_numbers))),
        )
        .order_by(Complaint.filed_at)
        .limit(1)
    )


_SEVERITY_ORDER = {"delay": 1, "damage": 2, "loss": 3}


async def open_from_shipment_event(
    session: AsyncSession, payload, *, event_id: str, settings: ComplaintsSettings, now: dt.datetime | None = None
) -> tuple[Complaint | None, str]:
    """ShipmentDamaged / ShipmentLost / ShipmentDelayed (past the threshold) -> a complaint for that customer and order.

    Returns (complaint, "filed" | "attached" | "ignored"). An open complaint of the same customer for the
    same order gets the event on its timeline instead of a second complaint.
    """
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
            f": {payload.reason}" if payload.reason else ""
        )
    else:
        return None, "ignored"
    survivor = await follow_merges(session, payload.customer_id)
    customer_id = survivor.id if survivor is not None else payload.customer_id

    existing = await session.scalar(
        select(Complaint)
        .join(ComplaintReference, ComplaintReference.complaint_id == Complaint.id)
        .where(
            Complaint.customer_id == customer_id,
            Complaint.status.in_(OPEN_STATES),
            Complaint.merged_into.is_(None),
            ComplaintReference.kind == "order",
            ComplaintReference.value == payload.order_id,
        )
        .order_by(Complaint.filed_at)
        .limit(1)
        .with_for_update()
    )
    if existing is not None:
        if payload.tracking_number:
            known = await session.scalar(
                select(ComplaintReference.id).where(
                    ComplaintReference.complaint_id == existing.id,
                    ComplaintReference.kind == "tracking",
                    ComplaintReference.value == payload.tracking_number,
                )
            )
            if known is None:
                session.add(ComplaintReference(complaint_id=existing.id, kind="tracking", value=payload.tracking_number))
        if _SEVERITY_ORDER.get(category, 0) > _SEVERITY_ORDER.get(existing.category, 0):
            raised = compute_priority(
                category, description, amount, survivor.tier if survivor else None, survivor.credit_grade if survivor else None
            )
            existing.priority = min(existing.priority, raised)
        await add_timeline(
            session,
            existing,
            "shipment_event",
            at=now,
            actor=SYSTEM,
            visibility="internal",
            body=description,
            data={"event_type": kind, "event_id": event_id, "order_id": payload.order_id},
        )
        existing.version += 1
        return existing, "attached"
    data = ComplaintCreate(
        customer_id=customer_id,
        order_ids=[payload.order_id],
        tracking_numbers=[payload.tracking_number] if payload.tracking_number else [],
        category=category,
        description=description,
        channel="web",
        claimed_amount=amount,
    )
    complaint = await file_complaint(
        session, data, settings=settings, now=now, channel="tms", allow_unknown_customer=True, source_event_id=event_id
    )
    return complaint, "filed"
