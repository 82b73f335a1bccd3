"""Setup resources: teams (with their business calendar), agents, routing rules.

Anyone on the staff may read them (agents pick a colleague to assign to); only a supervisor, manager or admin
changes them. Routes stay thin: the actor and the session come from dependencies, the work from
`crm_complaints.complaints.directory` (writes) and `crm_complaints.setup.service` (reads).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.problems import Problem, problem_response
from crm_complaints.complaints import access as complaints_service
from crm_complaints.complaints import directory
from crm_complaints.complaints.sla import minute_of_day
from crm_complaints.deps import actor_of, no_nul
from crm_complaints.setup import holidays, service
from crm_complaints.setup.schemas import AgentIn, AgentOut, HolidaysOut, RuleIn, RuleOut, TeamIn, TeamOut

router = APIRouter(tags=["setup"])


async def staff_actor(request: Request) -> complaints_service.Actor:
    actor = actor_of(request)
    if actor is None:
        raise Problem(401, "Actor required", "X-Actor-Id and X-Actor-Role headers are required (set by the gateway).")
    if not actor.is_staff:
        raise Problem(403, "Forbidden", "The setup is for staff.")
    return actor


async def setup_actor(actor: Annotated[complaints_service.Actor, Depends(staff_actor)]) -> complaints_service.Actor:
    service.check_setup_role(actor.role)
    return actor


Staff = Annotated[complaints_service.Actor, Depends(staff_actor)]
SetupActor = Annotated[complaints_service.Actor, Depends(setup_actor)]
# writes commit inside the route (`async with rt.transaction()`), before the answer is sent: the answer never reports
# an uncommitted change


@router.get("/teams", response_model=list[TeamOut])
async def list_teams(_: Staff, session: SessionDep):
    return await service.list_teams(session)


@router.get("/teams/{team_id}", response_model=TeamOut)
async def get_team(team_id: str, _: Staff, session: SessionDep):
    no_nul(team_id=team_id)
    return await service.get_team(session, team_id)


@router.put("/teams/{team_id}", response_model=TeamOut)
async def put_team(team_id: str, data: TeamIn, _: SetupActor, rt: RuntimeDep):
    no_nul(team_id=team_id)
    async with rt.transaction() as session:
        team = await directory.put_team(
            session, team_id, name=data.name, calendar=data.calendar, strategy=data.strategy, team_lead=data.team_lead, manager=data.manager
        )
        return service.team_out(team)


@router.get("/agents", response_model=list[AgentOut])
async def list_agents(_: Staff, session: SessionDep, team_id: Annotated[str | None, Query(max_length=50)] = None):
    no_nul(team_id=team_id)
    return await service.list_agents(session, team_id)


@router.get("/agents/{agent_id}", response_model=AgentOut)
async def get_agent(agent_id: str, _: Staff, session: SessionDep):
    no_nul(agent_id=agent_id)
    return await service.get_agent(session, agent_id)


@router.put("/agents/{agent_id}", response_model=AgentOut)
async def put_agent(agent_id: str, data: AgentIn, _: SetupActor, rt: RuntimeDep):
    no_nul(agent_id=agent_id)
    async with rt.transaction() as session:
        await directory.put_agent(
            session,
            agent_id,
            team_id=data.team_id,
            name=data.name,
            role=data.role,
            active=data.active,
            shifts=[(s.weekday, minute_of_day(s.start), minute_of_day(s.end)) for s in data.shifts],
            capacity=data.capacity,
            skills=data.skills,
            languages=data.languages,
        )
        return await service.get_agent(session, agent_id)


@router.get("/routing-rules", response_model=list[RuleOut])
async def get_rules(_: Staff, session: SessionDep):
    return await service.list_rules(session)


@router.put("/routing-rules", response_model=list[RuleOut])
async def put_rules(rules: list[RuleIn], _: SetupActor, rt: RuntimeDep):
    async with rt.transaction() as session:
        rows = await directory.replace_rules(session, [r.model_dump(exclude_none=True) for r in rules])
        return [service.rule_out(r) for r in rows]


@router.get("/calendars/mainland-china/{year}", response_model=HolidaysOut)
async def mainland_china_holidays(year: Annotated[int, Path(ge=1900, le=2100)], _: Staff):
    """Mainland China's holidays and make-up working days of a year, to prefill or extend a team's calendar."""
    found = holidays.mainland_china(year)
    return HolidaysOut(
        region="CN",
        year=year,
        holidays=[d.isoformat() for d in found.holidays],
        workdays=[d.isoformat() for d in found.workdays],
        source=holidays.SOURCE,
    )


def install_setup_problems(app: FastAPI) -> None:
    """The one place the setup's domain exceptions become problem details."""

    @app.exception_handler(service.NotFound)
    async def _not_found(request: Request, exc: service.NotFound):
        return problem_response(Problem(404, f"{exc.kind.capitalize()} not found", str(exc)), request)

    @app.exception_handler(holidays.YearNotCovered)
    async def _year_not_covered(request: Request, exc: holidays.YearNotCovered):
        return problem_response(
            Problem(404, "Year not covered", str(exc), covered={"from": exc.first, "to": exc.last}, source=holidays.SOURCE), request
        )

    @app.exception_handler(service.SetupRoleRequired)
    async def _setup_role(request: Request, exc: service.SetupRoleRequired):
        return problem_response(Problem(403, "Forbidden", "Changing teams, agents and routing needs the supervisor role."), request)
