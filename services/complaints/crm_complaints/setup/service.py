"""Reading the setup: teams, agents (with their shifts and open load), routing rules.

Changing it is `crm_complaints.complaints.directory` (put_team, put_agent, replace_rules). This layer raises
domain exceptions; `crm_complaints.setup.api` turns them into problem details.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_complaints.complaints.models import Agent, AgentShift, Complaint, RoutingRuleRow, Team
from crm_complaints.complaints.states import OPEN_STATES
from crm_complaints.setup.schemas import AgentOut, RuleOut, ShiftOut, TeamOut


class NotFound(LookupError):
    def __init__(self, kind: str, key: str):
        super().__init__(f"No {kind} {key!r}.")
        self.kind = kind
        self.key = key


class SetupRoleRequired(PermissionError):
    """Changing teams, agents and routing needs a supervisor, manager or admin."""


SETUP_ROLES = frozenset({"supervisor", "manager", "admin"})


def check_setup_role(role: str | None) -> None:
    if role not in SETUP_ROLES:
        raise SetupRoleRequired(role)


def team_out(team: Team) -> TeamOut:
    return TeamOut(
        id=team.id, name=team.name, calendar=team.calendar, strategy=team.strategy, team_lead=team.team_lead, manager=team.manager
    )


def rule_out(row: RoutingRuleRow) -> RuleOut:
    return RuleOut(
        team=row.team_id, name=row.name, category=row.category, region=row.region, service_type=row.service_type, position=row.position
    )


def _hh_mm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


async def list_teams(session: AsyncSession) -> list[TeamOut]:
    return [team_out(t) for t in (await session.scalars(select(Team).order_by(Team.id))).all()]


async def get_team(session: AsyncSession, team_id: str) -> TeamOut:
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound("team", team_id)
    return team_out(team)


async def list_agents(session: AsyncSession, team_id: str | None = None, agent_ids: list[str] | None = None) -> list[AgentOut]:
    query = select(Agent).order_by(Agent.team_id, Agent.id)
    if team_id is not None:
        query = query.where(Agent.team_id == team_id)
    if agent_ids is not None:
        query = query.where(Agent.id.in_(agent_ids))
    agents = (await session.scalars(query)).all()
    ids = [a.id for a in agents]
    if not ids:
        return []
    shifts: dict[str, list[ShiftOut]] = {}
    for s in (
        await session.scalars(select(AgentShift).where(AgentShift.agent_id.in_(ids)).order_by(AgentShift.weekday, AgentShift.start_minute))
    ).all():
        shifts.setdefault(s.agent_id, []).append(ShiftOut(weekday=s.weekday, start=_hh_mm(s.start_minute), end=_hh_mm(s.end_minute)))
    loads = dict(
        (
            await session.execute(
                select(Complaint.agent_id, func.count())
                .where(Complaint.agent_id.in_(ids), Complaint.status.in_(OPEN_STATES))
                .group_by(Complaint.agent_id)
            )
        ).all()
    )
    return [
        AgentOut(
            id=a.id,
            name=a.name,
            team_id=a.team_id,
            role=a.role,
            active=a.active,
            open_complaints=int(loads.get(a.id, 0)),
            shifts=shifts.get(a.id, []),
            capacity=a.capacity,
            skills=list(a.skills or []),
            languages=list(a.languages or []),
        )
        for a in agents
    ]


async def get_agent(session: AsyncSession, agent_id: str) -> AgentOut:
    found = await list_agents(session, agent_ids=[agent_id])
    if not found:
        raise NotFound("agent", agent_id)
    return found[0]


async def list_rules(session: AsyncSession) -> list[RuleOut]:
    rows = (await session.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.position, RoutingRuleRow.id))).all()
    return [rule_out(r) for r in rows]
