"""The inbox handler: one transaction per batch, facts upserted in bulk, touched customers marked for rescoring
and their service-level records of the trailing months recomputed.

The rescoring itself (the expensive part: features, scores, explanations, announcements) runs apart, in
`RescoreLoop` below (a task of the service's runtime) or explicitly with `service.rescore_dirty`."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_common.db import utcnow
from crm_scoring.scoring.ingest import SOURCE_EVENT_TYPES, apply_events, mark_dirty
from crm_scoring.scoring.service import rescore_dirty
from crm_scoring.service_levels.service import refresh_customers
from crm_scoring.settings import ScoringSettings

log = logging.getLogger(__name__)


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
        touched = await apply_events(session, [e.envelope for e in events], [e.payload for e in events])
        await mark_dirty(session, touched)
        await refresh_customers(session, touched, self.clock(), self.settings)

    async def rescore_dirty(self, unit_of_work) -> int:
        """Score every marked customer now, with this handler's settings and clock (tests and the rescoring loop)."""
        return await rescore_dirty(unit_of_work, self.settings, self.clock)


class RescoreLoop:
    """Debounced rescoring: every `rescore_interval_s`, score the customers marked since the last pass."""

    def __init__(self, unit_of_work, handler: ScoringHandler, interval_s: float):
        self.unit_of_work = unit_of_work
        self.handler = handler
        self.interval_s = interval_s
        self.rescored = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scoring-rescore")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.rescored += await self.handler.rescore_dirty(self.unit_of_work)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rescoring of marked customers failed; retrying at the next pass")
