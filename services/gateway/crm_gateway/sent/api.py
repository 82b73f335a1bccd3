"""GET /api/v1/dev/sent: the messages `make run`'s sink accepted, newest first (as Mailpit lists them)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from crm_common.problems import Problem, ProblemMapping
from crm_gateway.sent import service
from crm_gateway.state import GatewayDep

router = APIRouter(prefix="/api/v1/dev", tags=["development"])


@router.get("/sent", summary="Messages the development sink accepted (make run only)")
async def sent(
    gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    channel: Literal["email", "sms", "push"] | None = None,
    to: Annotated[str | None, Query(max_length=320)] = None,
):
    store = gateway.settings.dev_sent_store
    return {"items": await asyncio.to_thread(service.recent_messages, store, limit=limit, channel=channel, to=to)}


PROBLEMS: ProblemMapping = {
    service.NoSink: lambda exc: Problem(404, "Not Found", "No development message sink here (make run starts one)."),
}
