from fastapi import APIRouter

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.problems import Problem, ProblemMapping
from crm_notifications.delivery.pipeline import check_unsubscribe_token
from crm_notifications.preferences import service
from crm_notifications.preferences.schemas import PreferencesIn, PreferencesOut

router = APIRouter(prefix="/preferences", tags=["preferences"])


@router.get("/contacts/{contact_id}", response_model=PreferencesOut)
async def get_preferences(contact_id: str, runtime: RuntimeDep, session: SessionDep):
    return await service.show(session, contact_id, webhook_master_secret=runtime.settings.webhook_secret.get_secret_value())


@router.put("/contacts/{contact_id}", response_model=PreferencesOut)
async def put_preferences(contact_id: str, data: PreferencesIn, runtime: RuntimeDep):
    async with runtime.transaction() as session:
        await service.update(session, contact_id, data)
        return await service.show(session, contact_id, webhook_master_secret=runtime.settings.webhook_secret.get_secret_value())


@router.get("/unsubscribe")
async def unsubscribe_link(token: str, runtime: RuntimeDep):
    """The link in every marketing message (one click, no login)."""
    return await unsubscribe(token, runtime)


@router.post("/unsubscribe")
async def unsubscribe(token: str, runtime: RuntimeDep):
    parsed = check_unsubscribe_token(runtime.settings.unsubscribe_secret.get_secret_value(), token)
    if parsed is None:
        raise Problem(400, "Invalid unsubscribe link", "The link is not valid.")
    contact_id, category = parsed
    async with runtime.transaction() as session:
        await service.opt_out(session, contact_id, category, source="unsubscribe_link")
    return {"contact_id": contact_id, "category": category, "opted_in": False}


PROBLEMS: ProblemMapping = {
    service.ContactNotFound: lambda exc: Problem(404, "Contact not found", str(exc)),
}
