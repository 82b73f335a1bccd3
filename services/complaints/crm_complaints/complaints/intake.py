"""Intake: a complaint filed by a channel (file_complaint), and the steps every new complaint goes through, also one
opened from a TMS shipment incident (incidents.py): the customer is found in the local directory, the complaint
prioritised, routed to a team, given its SLA clocks, checked for a duplicate and assigned to an agent on shift (or
queued in the team until one is). `Opener` reads what those steps need for many complaints at once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.contacts import email_key, phone_key
from crm_common.db import dialect_insert, utcnow
from crm_common.events.complaints import ComplaintAssigned
from crm_common.events.envelope import EventEnvelope
from crm_complaints.complaints import messages, publish, routing
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


class AgentPool:
    """The agents on shift in some teams, with their open loads, read once (teams locked first): picks an agent for
    one complaint after another the way reading the tables again after each assignment would, since `count` adds each
    pick to the load it holds and the team's round-robin cursor is read from the (locked) team row each time."""

    def __init__(self, teams: dict[str, Team], on_shift: dict[str, list[routing.AgentLoad]], agents: Sequence[Agent] = ()):
        self.teams = teams
        self.on_shift = on_shift
        # held so that the session's (weak) identity map keeps them: record_assignment's session.get finds each one
        # without a SELECT, which would first flush everything added so far
        self.agents = {agent.id: agent for agent in agents}

    def pick(self, team_id: str, complaint: Complaint | None) -> str | None:
        """Pick an agent on shift, below capacity, preferring the complaint's category as a skill and its language
        (routing.eligible), by the team's strategy."""
        team = self.teams[team_id]
        candidates = routing.eligible(
            self.on_shift.get(team_id, []), complaint.category if complaint else None, complaint.language if complaint else None
        )
        return routing.pick_agent(candidates, team.strategy, team.rr_cursor)  # type: ignore[arg-type]

    def count(self, team_id: str, agent_id: str | None, now: dt.datetime) -> None:
        """The agent took one more open complaint now (what record_assignment wrote)."""
        if agent_id is None:
            return
        self.on_shift[team_id] = [
            dataclasses.replace(load, open_count=load.open_count + 1, last_assigned_at=now) if load.agent_id == agent_id else load
            for load in self.on_shift.get(team_id, [])
        ]


async def lock_agent_pool(
    session: AsyncSession, team_ids: Iterable[str], now: dt.datetime, *, create_missing: ComplaintsSettings | None = None
) -> AgentPool:
    """The AgentPool of the teams, their rows locked (PostgreSQL) so that concurrent assignments in a team see each
    other's load and round-robin cursor. `create_missing`: teams nobody has set up yet are created first (with these
    settings' default calendar, get_or_create_teams). Two statements whatever the number of teams and agents (a third
    and fourth when a team had to be created)."""
    wanted = sorted(set(team_ids))  # one lock order for every caller
    teams = await _lock_teams(session, wanted)
    missing = [team_id for team_id in wanted if team_id not in teams]
    if missing and create_missing is not None:
        await _create_teams(session, missing, create_missing)
        teams.update(await _lock_teams(session, missing))
        teams = {team_id: teams[team_id] for team_id in sorted(teams)}
    on_shift: dict[str, list[routing.AgentLoad]] = {team_id: [] for team_id in teams}
    if not teams:
        return AgentPool(teams, on_shift)
    # the open loads of every active agent of the teams, counted in the same statement (one round trip under the
    # teams' locks instead of one for the agents, one for their shifts and one for the loads of those on shift)
    active = select(Agent.id).where(Agent.team_id.in_(list(teams)), Agent.active.is_(True))
    loads = (
        select(Complaint.agent_id.label("agent_id"), func.count().label("open_count"))
        .where(Complaint.agent_id.in_(active.scalar_subquery()), Complaint.status.in_(OPEN_STATES))
        .group_by(Complaint.agent_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(Agent, AgentShift.weekday, AgentShift.start_minute, AgentShift.end_minute, loads.c.open_count)
            .outerjoin(AgentShift, AgentShift.agent_id == Agent.id)
            .outerjoin(loads, loads.c.agent_id == Agent.id)
            .where(Agent.team_id.in_(list(teams)), Agent.active.is_(True))
            .order_by(Agent.id)
        )
    ).all()
    agents: dict[str, Agent] = {}
    by_agent: dict[str, list[routing.Shift]] = {}
    open_counts: dict[str, int] = {}
    for agent, weekday, start_minute, end_minute, open_count in rows:
        agents.setdefault(agent.id, agent)
        shifts = by_agent.setdefault(agent.id, [])
        if weekday is not None:
            shifts.append(routing.Shift(weekday, start_minute, end_minute))
        open_counts[agent.id] = int(open_count or 0)
    for a in agents.values():
        if routing.on_shift(by_agent[a.id], now, teams[a.team_id].calendar.get("timezone", "Asia/Shanghai")):
            on_shift[a.team_id].append(
                routing.AgentLoad(
                    a.id, open_counts[a.id], a.last_assigned_at, a.capacity, frozenset(a.skills or ()), frozenset(a.languages or ())
                )
            )
    return AgentPool(teams, on_shift, list(agents.values()))


async def _lock_teams(session: AsyncSession, team_ids: list[str]) -> dict[str, Team]:
    # FOR NO KEY UPDATE: inserting a complaint takes KEY SHARE on its team, which this must not conflict with
    return {
        team.id: team
        for team in (
            await session.scalars(
                select(Team)
                .where(Team.id.in_(team_ids))
                .order_by(Team.id)
                .with_for_update(key_share=True)
                .execution_options(populate_existing=True)
            )
        ).all()
    }


async def choose_agent(session: AsyncSession, team: Team, now: dt.datetime, complaint: Complaint | None = None) -> str | None:
    """The agent for one complaint (AgentPool.pick), the team's row locked."""
    pool = await lock_agent_pool(session, [team.id], now)
    pool.teams.setdefault(team.id, team)  # deleted meanwhile: pick by the row the caller holds, as before the lock
    return pool.pick(team.id, complaint)


async def get_or_create_team(session: AsyncSession, team_id: str, settings: ComplaintsSettings) -> Team:
    return (await get_or_create_teams(session, [team_id], settings))[team_id]


async def get_or_create_teams(session: AsyncSession, team_ids: Iterable[str], settings: ComplaintsSettings) -> dict[str, Team]:
    """The teams rules route to; those nobody has set up yet are created (`_create_teams`)."""
    wanted = sorted(set(team_ids))
    teams = {team.id: team for team in (await session.scalars(select(Team).where(Team.id.in_(wanted)))).all()}
    missing = [team_id for team_id in wanted if team_id not in teams]
    if missing:
        await _create_teams(session, missing, settings)
        teams.update((team.id, team) for team in (await session.scalars(select(Team).where(Team.id.in_(missing)))).all())
    return teams


async def _create_teams(session: AsyncSession, team_ids: list[str], settings: ComplaintsSettings) -> None:
    """Teams with the default calendar (and this and next year's mainland holidays), unless a concurrent PUT or filing
    created them meanwhile (no UNIQUE conflict either way)."""
    calendar = mainland_holidays.prefill(BusinessCalendar(timezone=settings.default_timezone).to_dict(), utcnow().date())
    await session.execute(
        dialect_insert(session, Team)
        .values([{"id": t, "name": t.replace("_", " ").title(), "calendar": calendar, "strategy": "least_load"} for t in team_ids])
        .on_conflict_do_nothing(index_elements=[Team.id])
    )


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
    by_scheduler: bool = False,
) -> None:
    """Give the complaint to `team` and `agent_id` (None: it waits in the team's queue); the clocks move to the new
    team's calendar. A `reason` makes it a reassignment. `rule`: routing.rule_record of the rule that chose the team,
    kept on the assignment's timeline entry. `by_scheduler`: the scheduler hands a queued complaint to an agent."""
    old_team = complaint.team_id
    if old_team is not None and old_team != team.id:
        await rebase_clocks(session, complaint, now, old_team, team.id, settings)
    event = await record_assignment(
        session, complaint, team, agent_id, now=now, actor=actor, reason=reason, rule=rule, by_scheduler=by_scheduler
    )
    await publish.stage(session, [publish.envelope(complaint, event, now)])


async def record_assignment(
    session: AsyncSession,
    complaint: Complaint,
    team: Team,
    agent_id: str | None,
    *,
    now: dt.datetime,
    actor: Actor,
    reason: str | None,
    rule: dict | None = None,
    by_scheduler: bool = False,
) -> ComplaintAssigned:
    """assign_to() without moving clocks or staging the event, which it returns (a new complaint's clocks start in its
    team's calendar; intake stages its events together)."""
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
        message=messages.assignment(
            team=team.id, agent=agent_id, strategy=team.strategy, rule=rule, reason=reason, by_scheduler=by_scheduler
        ),
        data={
            "team": team.id,
            "agent": agent_id,
            "queued": agent_id is None,
            **({"rule": rule, "strategy": team.strategy} if rule is not None else {}),
            **({"by": "scheduler"} if by_scheduler else {}),
            **({"reason": reason} if reason else {}),
        },
    )
    return publish.assigned_event(complaint, team_id=team.id, agent_id=agent_id, reason=reason, now=now)


@dataclasses.dataclass(frozen=True)
class Filed:
    """A complaint just filed with what its answer shows besides the row: its order ids and tracking numbers and its
    clocks, as written. The answer is built from these instead of reading back what the transaction just wrote."""

    complaint: Complaint
    references: tuple[list[str], list[str]]
    clocks: list[SlaClockRow]


async def file_complaint(
    session: AsyncSession,
    data: ComplaintCreate,
    *,
    settings: ComplaintsSettings,
    actor: Actor | None = None,
    now: dt.datetime | None = None,
    channel: str | None = None,
) -> Complaint:
    """A complaint filed by a channel (`file`)."""
    return (await file(session, data, settings=settings, actor=actor, now=now, channel=channel)).complaint


async def file(
    session: AsyncSession,
    data: ComplaintCreate,
    *,
    settings: ComplaintsSettings,
    actor: Actor | None = None,
    now: dt.datetime | None = None,
    channel: str | None = None,
) -> Filed:
    """A complaint filed by a channel: the customer (and contact) resolved from what was given, then Opener.open."""
    now = now or utcnow()
    if data.category not in CATEGORIES:
        raise InvalidComplaintInput(
            f"{data.category!r} is not a complaint category.",
            title="Unknown category",
            allowed=list(CATEGORIES),
            errors=[field_error("body", "category", msg=f"must be one of {', '.join(CATEGORIES)}", type_="enum")],
        )
    reporter = data.reporter
    customer, contact_id = await resolve_customer(
        session,
        customer_id=data.customer_id,
        phone=data.phone,
        email=data.email,
        reporter_phone=reporter.phone if reporter else None,
        reporter_email=reporter.email if reporter else None,
    )
    language = data.language
    if language is None and contact_id:
        contact = await session.get(DirectoryContact, contact_id)
        language = contact.language if contact is not None else None
    opener = await Opener.load(
        session, [Filing(data, customer.id, customer, contact_id, language)], rules=await load_rules(session), now=now, settings=settings
    )
    filing = opener.filings[0]
    complaint, envelopes = await opener.open(session, filing, actor=actor or SYSTEM, channel=channel)
    await publish.stage(session, envelopes)
    await session.flush()
    return Filed(complaint, filing.references(), opener.clocks[complaint.id])


@dataclasses.dataclass(frozen=True)
class Filing:
    """A complaint to open: what was filed and the customer it belongs to (None: not in the directory, kept by id)."""

    data: ComplaintCreate
    customer_id: str
    customer: DirectoryCustomer | None
    contact_id: str | None = None
    language: str | None = None
    source_event_id: str | None = None
    # a description the service wrote itself (a TMS incident's): stored with its key so a reader can translate it
    description_message: messages.Message | None = None

    @property
    def region(self) -> str | None:
        return self.data.region or (self.customer.region if self.customer is not None else None)

    def priority(self) -> str:
        tier = self.customer.tier if self.customer is not None else None
        credit = self.customer.credit_grade if self.customer is not None else None
        return compute_priority(self.data.category, self.data.description, self.data.claimed_amount, tier, credit)

    def references(self) -> tuple[list[str], list[str]]:
        """Order ids and tracking numbers, trimmed, blanks and repeats dropped, in the given order."""
        order_ids = list(dict.fromkeys(o.strip() for o in self.data.order_ids if o.strip()))
        tracking = list(dict.fromkeys(t.strip() for t in self.data.tracking_numbers if t.strip()))
        return order_ids, tracking


class Opener:
    """Opens complaints one after another with what it read for all of them at once (routing rules, teams, possible
    duplicates, agents on shift): prioritised, routed, given SLA clocks, checked for a duplicate, assigned. One
    filing or a consumer batch of shipment incidents go through the same steps; a batch reads the tables once."""

    def __init__(
        self,
        filings: list[Filing],
        rules: list[routing.RoutingRule],
        pool: AgentPool,
        duplicates: DuplicateCandidates,
        now: dt.datetime,
        settings: ComplaintsSettings,
    ):
        self.filings = filings
        self.rules = rules
        self.pool = pool
        self.duplicates = duplicates
        self.now = now
        self.settings = settings
        self._calendars: dict[str, BusinessCalendar] = {}
        self.clocks: dict[str, list[SlaClockRow]] = {}  # complaint id -> the clocks open() started, in kind order

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        filings: list[Filing],
        *,
        rules: list[routing.RoutingRule],
        now: dt.datetime,
        settings: ComplaintsSettings,
    ) -> Opener:
        """Reads what opening `filings` needs; the teams they route to are locked (created first if missing)."""
        duplicates = await DuplicateCandidates.load(session, [(f.customer_id, *f.references()) for f in filings], now, settings)
        pool = await lock_agent_pool(session, {cls.route(rules, f)[0] for f in filings}, now, create_missing=settings)
        return cls(filings, rules, pool, duplicates, now, settings)

    @staticmethod
    def route(rules: list[routing.RoutingRule], filing: Filing) -> tuple[str, routing.RoutingRule | None]:
        return routing.route(rules, filing.data.category, filing.region, filing.data.service_type)

    def calendar(self, team: Team) -> BusinessCalendar:
        if team.id not in self._calendars:
            self._calendars[team.id] = BusinessCalendar.from_dict(team.calendar)
        return self._calendars[team.id]

    async def open(
        self, session: AsyncSession, filing: Filing, *, actor: Actor, channel: str | None = None
    ) -> tuple[Complaint, list[EventEnvelope]]:
        """Opens one complaint (added to the session, not flushed); returns it and its events, to be staged in order."""
        data, now = filing.data, self.now
        priority = filing.priority()
        team_id, rule = self.route(self.rules, filing)
        team = self.pool.teams[team_id]
        reporter = data.reporter
        complaint = Complaint(
            id=str(uuid.uuid4()),
            number=new_number(now),
            customer_id=filing.customer_id,
            contact_id=filing.contact_id,
            category=data.category,
            priority=priority,
            channel=channel or data.channel,
            status="new",
            team_id=team.id,
            agent_id=None,
            region=filing.region,
            service_type=data.service_type,
            description=data.description,
            description_key=filing.description_message.key if filing.description_message else None,
            description_params=filing.description_message.params if filing.description_message else None,
            desired_outcome=data.desired_outcome,
            claimed_amount=data.claimed_amount,
            attachments=[a.model_dump(mode="json") for a in data.attachments],
            reporter_name=reporter.name if reporter else None,
            reporter_phone=phone_key(reporter.phone) if reporter else None,
            reporter_email=email_key(reporter.email) if reporter else None,
            language=filing.language or "zh-CN",
            tier_at_filing=filing.customer.tier if filing.customer is not None else None,
            source_event_id=filing.source_event_id,
            filed_at=now,
            reopen_count=0,
            version=1,
        )
        session.add(complaint)
        order_ids, tracking = filing.references()
        duplicate = self.duplicates.find(complaint, order_ids, tracking)
        for kind, values in (("order", order_ids), ("tracking", tracking)):
            for value in values:
                session.add(ComplaintReference(complaint_id=complaint.id, kind=kind, value=value))
        self.duplicates.add(complaint, [("order", o) for o in order_ids] + [("tracking", t) for t in tracking])

        calendar = self.calendar(team)
        first_target, resolution_target = self.settings.sla_targets.get(priority, DEFAULT_TARGETS[priority])
        clocks = self.clocks[complaint.id] = []
        for kind, target in (("first_response", first_target), ("resolution", resolution_target)):
            row = SlaClockRow(complaint_id=complaint.id, kind=kind, escalation_level=0)
            store_clock(row, SlaClock.start(kind, target, now), calendar)
            session.add(row)
            clocks.append(row)

        await add_timeline(
            session,
            complaint,
            "filed",
            at=now,
            actor=actor,
            visibility="customer",
            body=data.description,
            message=filing.description_message,
            data={"channel": complaint.channel, "priority": priority, "category": data.category},
        )
        envelopes = [
            publish.envelope(complaint, publish.filed_event(complaint, order_ids=order_ids, tracking_numbers=tracking, now=now), now)
        ]
        if duplicate is not None:
            complaint.duplicate_of = duplicate.id
            await add_timeline(
                session,
                complaint,
                "possible_duplicate",
                at=now,
                visibility="internal",
                message=messages.Message("timeline.possible_duplicate_of", {"number": duplicate.number}),
                data={"complaint_id": duplicate.id, "number": duplicate.number},
            )
            await add_timeline(
                session,
                duplicate,
                "possible_duplicate",
                at=now,
                visibility="internal",
                message=messages.Message("timeline.duplicate_filed", {"number": complaint.number}),
                data={"complaint_id": complaint.id, "number": complaint.number},
            )
        agent_id = self.pool.pick(team.id, complaint)
        assigned = await record_assignment(
            session, complaint, team, agent_id, now=now, actor=SYSTEM, reason=None, rule=routing.rule_record(rule, team_id)
        )
        self.pool.count(team.id, agent_id, now)
        envelopes.append(publish.envelope(complaint, assigned, now))
        return complaint, envelopes


class DuplicateCandidates:
    """Complaints a new one may duplicate, read once for many new ones; `find` holds the rule: an open complaint (not
    closed, not merged) of the same customer and category, sharing an order id or tracking number, filed within the
    duplicate window; the earliest filed. Complaints opened (and references added) meanwhile are `add`ed."""

    def __init__(self, since: dt.datetime):
        self.since = since
        self.by_customer: dict[str, dict[str, Complaint]] = {}
        self.references: dict[str, set[tuple[str, str]]] = {}

    @classmethod
    async def load(
        cls, session: AsyncSession, wanted: list[tuple[str, list[str], list[str]]], now: dt.datetime, settings: ComplaintsSettings
    ) -> DuplicateCandidates:
        """`wanted`: (customer id, order ids, tracking numbers) of each new complaint."""
        found = cls(now - dt.timedelta(hours=settings.duplicate_window_hours))
        customers = {customer for customer, orders, tracking in wanted if orders or tracking}
        if not customers:
            return found
        orders = sorted({o for _, values, _ in wanted for o in values})
        tracking = sorted({t for _, _, values in wanted for t in values})
        rows = await session.execute(
            select(Complaint, ComplaintReference.kind, ComplaintReference.value)
            .join(ComplaintReference, ComplaintReference.complaint_id == Complaint.id)
            .where(
                Complaint.customer_id.in_(sorted(customers)),
                Complaint.filed_at >= found.since,
                Complaint.merged_into.is_(None),
                Complaint.status != "closed",
                ((ComplaintReference.kind == "order") & ComplaintReference.value.in_(orders))
                | ((ComplaintReference.kind == "tracking") & ComplaintReference.value.in_(tracking)),
            )
            .order_by(Complaint.filed_at)
        )
        for complaint, kind, value in rows.all():
            found.add(complaint, [(kind, value)])
        return found

    def add(self, complaint: Complaint, references: list[tuple[str, str]]) -> None:
        self.by_customer.setdefault(complaint.customer_id, {}).setdefault(complaint.id, complaint)
        self.references.setdefault(complaint.id, set()).update(references)

    def find(self, complaint: Complaint, order_ids: list[str], tracking_numbers: list[str]) -> Complaint | None:
        wanted = {("order", o) for o in order_ids} | {("tracking", t) for t in tracking_numbers}
        if not wanted:
            return None
        matching = [
            other
            for other in self.by_customer.get(complaint.customer_id, {}).values()
            if other.id != complaint.id
            and other.category == complaint.category
            and other.filed_at >= self.since
            and other.merged_into is None
            and other.status != "closed"
            and self.references[other.id] & wanted
        ]
        return min(matching, key=lambda other: other.filed_at, default=None)
