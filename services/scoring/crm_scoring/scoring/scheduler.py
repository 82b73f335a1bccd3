"""The population recompute on a wall-clock schedule: a cron expression (`SCORING_RECOMPUTE_CRON`, default 02:00) in
`SCORING_TIME_ZONE`. The last run is the stored population model's `computed_at` (also set by POST /admin/recompute),
so a run missed while every replica was down is due at once when one starts, and a fresh installation recomputes at
start. Every replica runs the loop; the run itself is under a lock (PostgreSQL advisory lock; SQLite's write lock) and
checks again, under it, that the run is still due, so one replica does the work and the others skip.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import delete, false, select, text

from crm_scoring.scoring.models import population_model, rescore_queue
from crm_scoring.scoring.service import recompute_population

log = logging.getLogger(__name__)
RECOMPUTE_LOCK_KEY = 0x5C0E1
MAX_SLEEP_S = 300.0  # wake up at least this often, so a changed wall clock (or a suspended host) is noticed


def last_scheduled(cron: str, zone: str, now: dt.datetime) -> dt.datetime:
    """The latest scheduled time at or before `now` (aware, UTC)."""
    local = now.astimezone(ZoneInfo(zone))
    return croniter(cron, local + dt.timedelta(microseconds=1)).get_prev(dt.datetime).astimezone(dt.UTC)


def next_scheduled(cron: str, zone: str, now: dt.datetime) -> dt.datetime:
    """The first scheduled time after `now` (aware, UTC)."""
    return croniter(cron, now.astimezone(ZoneInfo(zone))).get_next(dt.datetime).astimezone(dt.UTC)


def is_due(cron: str, zone: str, last_run: dt.datetime | None, now: dt.datetime) -> bool:
    """Due when there has never been a run, or the last one is older than the latest scheduled time (missed or due)."""
    return last_run is None or last_run < last_scheduled(cron, zone, now)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RecomputeScheduler:
    def __init__(self, runtime, cron: str, zone: str, *, now: Callable[[], dt.datetime] = _utcnow):
        self.runtime = runtime
        self.cron, self.zone = cron, zone
        self.now = now
        self.runs = 0

    async def _last_run(self, session) -> dt.datetime | None:
        return await session.scalar(select(population_model.c.computed_at).where(population_model.c.id == 1))

    async def run_if_due(self) -> dict | None:
        """Recompute if the schedule says so, under the lock; None when not due or another replica holds the lock."""
        runtime = self.runtime
        async with runtime.transaction() as session:
            if runtime.db.dialect == "postgresql":
                if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RECOMPUTE_LOCK_KEY}):
                    return None
            else:
                await session.execute(delete(rescore_queue).where(false()))  # SQLite: take the write lock before checking
            if not is_due(self.cron, self.zone, await self._last_run(session), self.now()):
                return None
            result = await recompute_population(session, runtime.settings, runtime.clock())
        self.runs += 1
        log.info("population recompute: %d customers, events %s", result["customers"], result["events"])
        return result

    async def run(self) -> None:
        while True:
            try:
                await self.run_if_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("population recompute failed; tried again at the next wake-up")
            now = self.now()
            wait = (next_scheduled(self.cron, self.zone, now) - now).total_seconds()
            await asyncio.sleep(min(max(wait, 0.0), MAX_SLEEP_S))
