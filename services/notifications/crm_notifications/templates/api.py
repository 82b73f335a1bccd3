from fastapi import APIRouter, Response

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.idempotency import Answer, Idempotent
from crm_common.problems import Problem, ProblemMapping
from crm_notifications.templates import service
from crm_notifications.templates.schemas import PreviewIn, PreviewOut, TemplateCreate, TemplateIn, TemplateOut

router = APIRouter(prefix="/templates", tags=["templates"])


@router.get("", response_model=list[TemplateOut])
async def list_templates(session: SessionDep):
    return await service.list_current(session)


@router.post("", status_code=201, response_model=TemplateOut)
async def create_template(data: TemplateCreate, once: Idempotent):
    async def create(session) -> Answer:
        template = TemplateOut.model_validate(await service.save_version(session, **data.model_dump()))
        return Answer(template, 201, {"Location": f"/templates/{template.key}/{template.language}"})

    return await once(data, create)


@router.get("/{key}/versions", response_model=list[TemplateOut])
async def template_versions(key: str, session: SessionDep):
    return await service.versions(session, key)


@router.get("/{key}/{language}", response_model=TemplateOut)
async def get_template(key: str, language: str, session: SessionDep):
    return await service.get_current_or_404(session, key, language)


@router.put("/{key}/{language}", response_model=TemplateOut)
async def update_template(key: str, language: str, data: TemplateIn, runtime: RuntimeDep):
    """Saves a new version; earlier versions stay for the record."""
    if language not in ("zh-CN", "en"):
        raise Problem(
            422,
            "Validation failed",
            "language must be zh-CN or en",
            errors=[{"loc": ["path", "language"], "msg": "zh-CN or en", "type": "enum"}],
        )
    async with runtime.transaction() as session:
        return await service.save_version(session, key=key, language=language, **data.model_dump())


@router.delete("/{key}", status_code=204)
async def delete_template(key: str, runtime: RuntimeDep):
    async with runtime.transaction() as session:
        await service.delete(session, key)
    return Response(status_code=204)


@router.post("/{key}/preview", response_model=PreviewOut)
async def preview(key: str, data: PreviewIn, session: SessionDep):
    if data.template is not None:
        service.check(data.template.subject, data.template.body, data.template.variables)
        subject, body = service.preview(data.template, data.data)
        return PreviewOut(key=key, language=data.language or "zh-CN", version=None, subject=subject, body=body)
    template = await service.get_current_or_404(session, key, data.language or "zh-CN")
    subject, body = service.preview(template, data.data)
    return PreviewOut(key=key, language=template.language, version=template.version, subject=subject, body=body)


PROBLEMS: ProblemMapping = {
    # rules, preferences and segment sends refuse their fields with it too
    service.InvalidInput: lambda exc: Problem(422, "Validation failed", str(exc), type_="urn:crm:problem:validation", errors=exc.errors),
    service.TemplateNotFound: lambda exc: Problem(404, "Template not found", str(exc)),
}
