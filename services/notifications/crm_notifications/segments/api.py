from fastapi import APIRouter, Request

from crm_common.idempotency import Answer, Idempotent
from crm_common.runtime import runtime_of
from crm_notifications.segments import service
from crm_notifications.segments.service import SegmentSendIn, SegmentSendOut

router = APIRouter(prefix="/segment-sends", tags=["segment sends"])


@router.post("", response_model=SegmentSendOut)
async def segment_send(data: SegmentSendIn, request: Request, once: Idempotent):
    runtime = runtime_of(request)

    async def send(session) -> Answer:
        return Answer(await service.segment_send(session, data, runtime.clock.now()))

    answer = await once(data, send)
    if not data.dry_run:
        runtime.dispatcher.wake()
    return answer
