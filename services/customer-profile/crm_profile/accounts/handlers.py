"""Events in: scoring's announcements feed the workspace's read model (a map from payload type to handler)."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_profile.accounts import service

HANDLERS = {
    "CustomerScored": service.apply_scored,
    "CreditGradeChanged": service.apply_credit_grade_changed,
}


class AccountScoresHandler:
    name = "profile-account-scores"
    topics = ("crm.scoring",)
    event_types = frozenset(HANDLERS)

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await HANDLERS[event.envelope.type](session, event.payload)
