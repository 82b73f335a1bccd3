from fastapi import APIRouter, Header, Response

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.idempotency import Answer, Idempotent
from crm_common.problems import Problem, ProblemMapping
from crm_notifications.rules import service
from crm_notifications.rules.schemas import RuleIn, RuleOut

router = APIRouter(prefix="/rules", tags=["rules"])


@router.get("", response_model=list[RuleOut])
async def list_rules(session: SessionDep, event_type: str | None = None):
    return await service.list_rules(session, event_type)


@router.post("", status_code=201, response_model=RuleOut)
async def create_rule(data: RuleIn, once: Idempotent):
    async def create(session) -> Answer:
        rule = RuleOut.model_validate(await service.create(session, data))
        return Answer(rule, 201, {"Location": f"/rules/{rule.id}"})

    return await once(data, create)


@router.get("/{rule_id}", response_model=RuleOut)
async def get_rule(rule_id: str, session: SessionDep):
    return await service.get(session, rule_id)


@router.put("/{rule_id}", response_model=RuleOut)
async def update_rule(rule_id: str, data: RuleIn, runtime: RuntimeDep, if_match: str | None = Header(default=None)):
    version = int(if_match.strip('"W/')) if if_match and if_match.strip('"W/').isdigit() else None
    async with runtime.transaction() as session:
        return await service.update(session, rule_id, data, if_version=version)


@router.delete("/{rule_id}", status_code=204)
async def delete_rule(rule_id: str, runtime: RuntimeDep):
    async with runtime.transaction() as session:
        await service.delete(session, rule_id)
    return Response(status_code=204)


PROBLEMS: ProblemMapping = {
    service.RuleExists: lambda exc: Problem(409, "Rule exists", str(exc)),
    service.RuleVersionMismatch: lambda exc: Problem(412, "Precondition failed", str(exc)),
    service.RuleNotFound: lambda exc: Problem(404, "Rule not found", str(exc)),
}
