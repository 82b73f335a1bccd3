"""The local customer directory (fed by crm.customers and crm.scoring events) and team/agent/routing setup."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.contacts import email_key, phone_key
from crm_common.db import dialect_insert, utcnow
from crm_common.events.customers import CustomerSnapshot
from crm_common.problems import Problem
from crm_complaints.complaints.models import (
    Agent,
    AgentShift,
    Complaint,
    DirectoryContact,
    DirectoryCustomer,
    RoutingRuleRow,
    Team,
)
from crm_complaints.complaints.priority import CATEGORIES
from crm_complaints.complaints.sla import BusinessCalendar, CalendarError


async def apply_snapshot(session: AsyncSession, snapshot: CustomerSnapshot) -> None:
    customer = await session.get(DirectoryCustomer, snapshot.customer_id)
    if customer is None:
        customer = DirectoryCustomer(id=snapshot.customer_id, erased=False)
        session.add(customer)
    if customer.erased:
        return
    customer.name = snapshot.name
    customer.region = snapshot.region
    customer.status = snapshot.status
    customer.account_manager = snapshot.account_manager
    customer.updated_at = utcnow()
    await session.flush()
    await session.execute(delete(DirectoryContact).where(DirectoryContact.customer_id == snapshot.customer_id))
    for contact in snapshot.contacts:
        await session.execute(delete(DirectoryContact).where(DirectoryContact.contact_id == contact.contact_id))
        session.add(
            DirectoryContact(
                contact_id=contact.contact_id,
                customer_id=snapshot.customer_id,
                name=contact.name,
                phone=phone_key(contact.phone),
                email=email_key(contact.email),
                language=contact.language,
            )
        )
    await session.flush()


async def apply_merged(session: AsyncSession, survivor_id: str, merged_id: str) -> None:
    merged = await session.get(DirectoryCustomer, merged_id)
    if merged is None:
        merged = DirectoryCustomer(id=merged_id, erased=False)
        session.add(merged)
    if await session.get(DirectoryCustomer, survivor_id) is None:
        session.add(DirectoryCustomer(id=survivor_id, erased=False))
    merged.merged_into = survivor_id
    merged.updated_at = utcnow()
    await session.flush()
    await session.execute(update(DirectoryContact).where(DirectoryContact.customer_id == merged_id).values(customer_id=survivor_id))
    await session.execute(update(Complaint).where(Complaint.customer_id == merged_id).values(customer_id=survivor_id))


async def apply_erased(session: AsyncSession, customer_id: str, contact_id: str | None) -> None:
    """Forget a contact, or the whole customer: directory rows and the reporter details on complaints."""
    if contact_id:
        await session.execute(delete(DirectoryContact).where(DirectoryContact.contact_id == contact_id))
        await session.execute(
            update(Complaint)
            .where(Complaint.contact_id == contact_id)
            .values(reporter_name=None, reporter_phone=None, reporter_email=None, contact_id=None)
        )
        return
    await session.execute(delete(DirectoryContact).where(DirectoryContact.customer_id == customer_id))
    customer = await session.get(DirectoryCustomer, customer_id)
    if customer is None:
        customer = DirectoryCustomer(id=customer_id)
        session.add(customer)
    customer.erased = True
    customer.name = None
    customer.updated_at = utcnow()
    await session.execute(
        update(Complaint)
        .where(Complaint.customer_id == customer_id)
        .values(reporter_name=None, reporter_phone=None, reporter_email=None, contact_id=None)
    )


async def apply_tier(session: AsyncSession, customer_id: str, *, tier: str | None = None, credit_grade: str | None = None) -> None:
    customer = await session.get(DirectoryCustomer, customer_id)
    if customer is None:
        customer = DirectoryCustomer(id=customer_id, erased=False)
        session.add(customer)
    if tier is not None:
        customer.tier = tier
    if credit_grade is not None:
        customer.credit_grade = credit_grade
    customer.updated_at = utcnow()
    await session.flush()


# ---- teams, agents, routing rules (admin) -------------------------------------------------------


async def _create_or_replace(session: AsyncSession, model, key: str, values: dict):
    """One upsert, not read-then-insert: a concurrent creator of the same row (another PUT, a filing routed to a new team)
    never turns a PUT into a UNIQUE conflict. Columns not in `values` (a team's round-robin cursor) keep what they hold."""
    insert = dialect_insert(session, model).values(id=key, **values)
    await session.execute(insert.on_conflict_do_update(index_elements=[model.id], set_=values))
    return await session.get(model, key, populate_existing=True)


async def put_team(
    session: AsyncSession,
    team_id: str,
    *,
    name: str | None = None,
    calendar: dict | None = None,
    strategy: str = "least_load",
    team_lead: str | None = None,
    manager: str | None = None,
) -> Team:
    if strategy not in ("least_load", "round_robin"):
        raise Problem(
            422,
            "Unknown strategy",
            allowed=["least_load", "round_robin"],
            errors=[{"loc": ["body", "strategy"], "msg": "least_load or round_robin", "type": "enum"}],
        )
    try:
        cal = BusinessCalendar.from_dict(calendar or {})
    except (CalendarError, ValueError, KeyError) as exc:
        where = ["body", "calendar", *getattr(exc, "loc", ())]
        raise Problem(422, "Invalid calendar", str(exc), errors=[{"loc": where, "msg": str(exc), "type": "value_error"}]) from exc
    return await _create_or_replace(
        session,
        Team,
        team_id,
        {"name": name or team_id, "calendar": cal.to_dict(), "strategy": strategy, "team_lead": team_lead, "manager": manager},
    )


async def put_agent(
    session: AsyncSession,
    agent_id: str,
    *,
    team_id: str,
    name: str | None = None,
    role: str = "agent",
    active: bool = True,
    shifts: list[tuple[int, int, int]] = (),
    capacity: int | None = None,
    skills: list[str] = (),
    languages: list[str] = (),
) -> Agent:
    if await session.get(Team, team_id) is None:
        raise Problem(
            422, "Unknown team", f"No team {team_id!r}.", errors=[{"loc": ["body", "team_id"], "msg": "unknown team", "type": "not_found"}]
        )
    agent = await _create_or_replace(
        session,
        Agent,
        agent_id,
        {
            "team_id": team_id,
            "name": name,
            "role": role,
            "active": active,
            "capacity": capacity,
            "skills": list(skills),
            "languages": list(languages),
        },
    )
    await session.execute(delete(AgentShift).where(AgentShift.agent_id == agent_id))
    for weekday, start, end in shifts:
        if weekday not in range(7) or not (0 <= start < 1440) or not (0 < end <= 1440) or start == end:
            raise Problem(
                422,
                "Invalid shift",
                f"shift {weekday} {start}-{end}",
                errors=[{"loc": ["body", "shifts"], "msg": "weekday 0-6, minutes 0-1440", "type": "value_error"}],
            )
        session.add(AgentShift(agent_id=agent_id, weekday=weekday, start_minute=start, end_minute=end))
    await session.flush()
    return agent


async def replace_rules(session: AsyncSession, rules: list[dict]) -> list[RoutingRuleRow]:
    """Replace the routing table: [{category?, region?, service_type?, team, position?, name?}, ...]."""
    rows = []
    for index, rule in enumerate(rules):
        category = rule.get("category")
        if category is not None and category not in CATEGORIES:
            raise Problem(
                422,
                "Unknown category",
                f"{category!r} in rule {index}",
                allowed=list(CATEGORIES),
                errors=[{"loc": ["body", str(index), "category"], "msg": "unknown category", "type": "enum"}],
            )
        if await session.get(Team, rule["team"]) is None:
            raise Problem(
                422,
                "Unknown team",
                f"{rule['team']!r} in rule {index}",
                errors=[{"loc": ["body", str(index), "team"], "msg": "unknown team", "type": "not_found"}],
            )
        rows.append(
            RoutingRuleRow(
                category=category,
                region=rule.get("region"),
                service_type=rule.get("service_type"),
                team_id=rule["team"],
                position=int(rule.get("position", index)),
                name=rule.get("name"),
            )
        )
    await session.execute(delete(RoutingRuleRow))
    session.add_all(rows)
    await session.flush()
    return rows


async def list_rules(session: AsyncSession) -> list[RoutingRuleRow]:
    return list((await session.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.position, RoutingRuleRow.id))).all())
