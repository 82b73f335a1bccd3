from fastapi import APIRouter, Request

from crm_common.problems import Problem
from crm_common.runtime import runtime_of
from crm_notifications.delivery.pipeline import check_unsubscribe_token
from crm_notifications.preferences import service
from crm_notifications.preferences.schemas import PreferencesIn, PreferencesOut

router = APIRouter(prefix="/preferences", tags=["preferences"])


@router.get("/contacts/{contact_id}", response_model=PreferencesOut)
async def get_preferences(contact_id: str, request: Request):
    runtime = runtime_of(request)
    async with runtime.db.sessions() as session:
        return await service.show(session, contact_id, webhook_master_secret=runtime.settings.webhook_secret.get_secret_value())


@router.put("/contacts/{contact_id}", response_model=PreferencesOut)
async def put_preferences(contact_id: str, data: PreferencesIn, request: Request):
    runtime = runtime_of(request)
    async with runtime.transaction() as session:
        await service.update(session, contact_id, data)
        return await service.show(session, contact_id, webhook_master_secret=runtime.settings.webhook_secret.get_secret_value())


@router.get("/unsubscribe")
async def unsubscribe_link(token: str, request: Request):
    """The link in every marketing message (one click, no login)."""
    return await unsubscribe(token, request)


@router.post("/unsubscribe")
async def unsubscribe(token: str, request: Request):
    runtime = runtime_of(request)
    parsed = check_unsubscribe_token(runtime.settings.unsubscribe_secret.get_secret_value(), token)
    if parsed is None:
        raise Problem(400, "Invalid unsubscribe link", "The link is not valid.")
    contact_id, category = parsed
    async with runtime.transaction() as session:
        await service.opt_out(session, contact_id, category, source="unsubscribe_link")
    return {"contact_id": contact_id, "category": category, "opted_in": False}
