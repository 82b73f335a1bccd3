"""The inbox handler: one transaction per batch, facts upserted in bulk, touched customers rescored."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_common.db import utcnow
from crm_scoring.scoring.ingest import SOURCE_EVENT_TYPES, apply_events
from crm_scoring.scoring.service import rescore
from crm_scoring.settings import ScoringSettings


class ScoringHandler:
    name = "scoring"
    topics = ("logistics.orders", "finance.payments", "crm.complaints", "crm.customers")
    event_types = SOURCE_EVENT_TYPES

    def __init__(self, settings: ScoringSettings, *, clock: Callable[[], dt.datetime] = utcnow):
        self.settings = settings
        self.clock = clock

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await self.handle_batch(session, [event])

    async def handle_batch(self, session: AsyncSession, events: Sequence[Event]) -> None:
        touched = await apply_events(session, [e.envelope for e in events], [e.payload for e in events], currency=self.settings.currency)
        await rescore(session, touched, self.settings, self.clock())
