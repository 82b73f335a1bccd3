"""The scoring runtime: the shared one (db, outbox relay, the `scoring` consumer) plus two background loops, the
debounced rescoring of marked customers (where the consumer runs, or where `run_rescoring` says; the marks are rows,
so ingestion and rescoring may run in different processes) and the population recompute on its schedule
(`run_scheduler`; every replica may run it, one does the work under a lock)."""

from __future__ import annotations

from crm_common.runtime import ServiceRuntime
from crm_scoring.scoring.handlers import ScoringHandler, rescore_loop
from crm_scoring.settings import ScoringSettings


class ScoringRuntime(ServiceRuntime):
    def __init__(self, settings: ScoringSettings, handler: ScoringHandler):
        from crm_scoring.scoring.scheduler import RecomputeScheduler

        super().__init__(settings, handlers=[handler])
        self.handler = handler
        self.clock = handler.clock
        if settings.run_rescoring is not False:
            self.add_background_loop(
                "rescore",
                lambda: rescore_loop(self, handler, settings.rescore_interval_s),
                with_consumers=settings.run_rescoring is None,
            )
        if settings.run_scheduler:
            self.add_background_loop("recompute", RecomputeScheduler(self, settings.recompute_cron, settings.time_zone).run)

    async def rescore_dirty(self) -> int:
        """Score the marked customers now (what the rescoring loop does every `rescore_interval_s`)."""
        return await self.handler.rescore_dirty(self)


def build_runtime(settings: ScoringSettings | None = None, *, clock=None) -> ScoringRuntime:
    settings = settings or ScoringSettings()
    handler = ScoringHandler(settings) if clock is None else ScoringHandler(settings, clock=clock)
    return ScoringRuntime(settings, handler)
