"""ASGI entry point: `uvicorn crm_scoring.main:app --port 8002` (or `create_app(settings)` in tests)."""
from __future__ import annotations

from fastapi import FastAPI

from crm_common.production import exit_if_refused
from crm_common.runtime import ServiceRuntime, create_service_app
from crm_scoring.scoring.consumer import RescoreLoop, ScoringHandler
from crm_scoring.settings import ScoringSettings


class ScoringRuntime(ServiceRuntime):
    """The shared runtime plus the rescoring task, which runs wherever the consumers run."""

    def __init__(self, settings: ScoringSettings, handler: ScoringHandler):
        super().__init__(settings, handlers=[handler])
        self.handler = handler
        self.clock = handler.clock
        self.rescorer = RescoreLoop(self, handler, settings.rescore_interval_s)

    async def start(self, *, relay: bool | None = None, consumers: bool | None = None) -> None:
        await super().start(relay=relay, consumers=consumers)
        if self.settings.run_consumers if consumers is None else consumers:
            self.rescorer.start()

    async def stop(self) -> None:
        await self.rescorer.stop()
        await super().stop()

    async def rescore_dirty(self) -> int:
        """Score the marked customers now (what the rescoring task does every `rescore_interval_s`)."""
        return await self.handler.rescore_dirty(self)


def build_runtime(settings: ScoringSettings, *, clock=None) -> ScoringRuntime:
    handler = ScoringHandler(settings) if clock is None else ScoringHandler(settings, clock=clock)
    return ScoringRuntime(settings, handler)


def create_app(settings: ScoringSettings | None = None, *, start_background: bool = True, clock=None) -> FastAPI:
    from crm_scoring.reports.api import management_reports_router
    from crm_scoring.scoring.api import admin_router, reports_router, scores_router
    from crm_scoring.scoring.scheduler import RecomputeScheduler
    from crm_scoring.service_levels.api import service_levels_admin_router, service_levels_reports_router, service_levels_router

    settings = settings or ScoringSettings()
    runtime = build_runtime(settings, clock=clock)
    app = create_service_app(
        runtime,
        title="Scoring",
        description="Customer value, ABC class, RFM, loyalty, satisfaction, credit, churn risk, lifetime value and service levels.",
        routers=[scores_router, reports_router, management_reports_router, admin_router, service_levels_router, service_levels_reports_router, service_levels_admin_router],
        start_background=start_background,
    )
    if start_background and settings.run_scheduler:
        runtime.add_background_loop("recompute", RecomputeScheduler(runtime, settings.recompute_cron, settings.time_zone).run)
    return app


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return exit_if_refused(create_app)
    raise AttributeError(name)
