"""Events in: scoring's announcements feed the workspace's read model (a map from payload type to handler), and may
make a customer lost (win-back); the orders of logistics.orders feed the orders read model (last order, revenue); the
complaints and service-level breaches feed the account managers' KPIs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_profile.accounts import kpis, service, winback
from crm_profile.settings import ProfileSettings

HANDLERS = {
    "CustomerScored": service.apply_scored,
    "CreditGradeChanged": service.apply_credit_grade_changed,
    "ServiceLevelBreached": kpis.apply_service_level_breached,
}


class AccountScoresHandler:
    name = "profile-account-scores"
    topics = ("crm.scoring",)
    event_types = frozenset(HANDLERS)

    def __init__(self, settings: ProfileSettings | None = None):
        self.settings = settings or ProfileSettings()

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await HANDLERS[event.envelope.type](session, event.payload)
        if event.envelope.type == "CustomerScored":
            scored = event.payload
            await winback.check_inactive(
                session,
                scored.customer_id,
                scored.scores.get("p_alive"),
                scored.scored_at,
                after_days=self.settings.lost_after_days,
                p_alive_below=self.settings.lost_p_alive_below,
            )


ORDER_HANDLERS = {
    "OrderCreated": winback.apply_order_created,
    "OrderCancelled": winback.apply_order_cancelled,
}


class AccountOrdersHandler:
    name = "profile-account-orders"
    topics = ("logistics.orders",)
    event_types = frozenset(ORDER_HANDLERS)

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await ORDER_HANDLERS[event.envelope.type](session, event.payload)


COMPLAINT_HANDLERS = {
    "ComplaintFiled": kpis.apply_complaint_filed,
    "SurveyAnswered": kpis.apply_survey_answered,
}


class AccountComplaintsHandler:
    """The complaints of each customer and their callback scores, for the account managers' KPIs."""

    name = "profile-account-complaints"
    topics = ("crm.complaints",)
    event_types = frozenset(COMPLAINT_HANDLERS)

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await COMPLAINT_HANDLERS[event.envelope.type](session, event.payload)
