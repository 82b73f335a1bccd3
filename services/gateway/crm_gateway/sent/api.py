"""GET /api/v1/dev/sent: the messages `make run`'s sink accepted, newest first (as Mailpit lists them)."""
from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from crm_common.problems import Problem
from crm_gateway.sent import service
from crm_gateway.state import gateway_of

router = APIRouter(prefix="/api/v1/dev", tags=["development"])


@router.get("/sent", summary="Messages the development sink accepted (make run only)")
async def sent(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 100,
               channel: Literal["email", "sms", "push"] | None = None, to: Annotated[str | None, Query(max_length=320)] = None):
    store = gateway_of(request).settings.dev_sent_store
    try:
        items = await asyncio.to_thread(service.recent_messages, store, limit=limit, channel=channel, to=to)
    except service.NoSink:
        raise Problem(404, "Not Found", "No development message sink here (make run starts one).") from None
    return {"items": items}
