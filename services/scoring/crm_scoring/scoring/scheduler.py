"""The nightly population recompute: a background loop of the API process's runtime.

With several replicas each runs it; on PostgreSQL an advisory lock lets only one do the work at a time.
"""
from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text

from crm_scoring.scoring.service import load_model, recompute_population

log = logging.getLogger(__name__)
RECOMPUTE_LOCK_KEY = 0x5C0E1


class RecomputeScheduler:
    def __init__(self, runtime, interval_s: float):
        self.runtime = runtime
        self.interval_s = interval_s
        self.runs = 0

    async def run_once(self) -> dict | None:
        runtime = self.runtime
        async with runtime.transaction() as session:
            if runtime.db.dialect == "postgresql":
                if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RECOMPUTE_LOCK_KEY}):
                    return None
            result = await recompute_population(session, runtime.settings, runtime.clock())
        self.runs += 1
        log.info("population recompute: %d customers, events %s", result["customers"], result["events"])
        return result

    async def run(self) -> None:
        # a fresh installation gets its first model at once; afterwards every interval
        try:
            async with self.runtime.db.sessions() as session:
                first_delay = 0.0 if await load_model(session) is None else self.interval_s
        except Exception:
            first_delay = self.interval_s
        delay = first_delay
        while True:
            await asyncio.sleep(delay)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("population recompute failed")
            delay = self.interval_s
