"""The inbox handler: one transaction per batch, facts upserted in bulk, touched customers marked for rescoring
and their service-level records of the trailing months recomputed.

The rescoring itself (the expensive part: features, scores, explanations, announcements) runs apart, in
`rescore_loop` below (a background loop of the service's runtime) or explicitly with `service.rescore_dirty`."""

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
        await mark_dirty(session, touched, traces=_first_trace_per_customer(events))
        await refresh_customers(session, touched, self.clock())

    async def rescore_dirty(self, unit_of_work) -> int:
        """Score every marked customer now, with this handler's settings and clock (tests and the rescoring loop)."""
        return await rescore_dirty(unit_of_work, self.settings, self.clock)


def _first_trace_per_customer(events: Sequence[Event]) -> dict[str, str | None] | None:
    """Tracing on: the trace of each customer's (the key's) first event in the batch, the one that marks it."""
    traces = {e.envelope.key: e.traceparent for e in reversed(events) if e.traceparent}
    return traces or None


async def rescore_loop(unit_of_work, handler: ScoringHandler, interval_s: float) -> None:
    """Debounced rescoring (a background loop of the runtime): every `interval_s`, score the customers marked since the
    last pass."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await handler.rescore_dirty(unit_of_work)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rescoring of marked customers failed; retrying at the next pass")
