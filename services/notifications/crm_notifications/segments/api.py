from fastapi import APIRouter

from crm_common.deps import RuntimeDep
from crm_common.idempotency import Answer, Idempotent
from crm_common.problems import Problem, ProblemMapping
from crm_notifications.segments import service
from crm_notifications.segments.service import SegmentSendIn, SegmentSendOut

router = APIRouter(prefix="/segment-sends", tags=["segment sends"])


@router.post("", response_model=SegmentSendOut)
async def segment_send(data: SegmentSendIn, runtime: RuntimeDep, once: Idempotent):

    async def send(session) -> Answer:
        return Answer(await service.segment_send(session, data, runtime.clock.now()))

    answer = await once(data, send)
    if not data.dry_run:
        runtime.dispatcher.wake()
    return answer


PROBLEMS: ProblemMapping = {
    service.RecipientCountChanged: lambda exc: Problem(
        409, "Recipient count changed", str(exc), recipients=exc.recipients, expected_recipients=exc.expected
    ),
}
