"""ASGI entry point: `uvicorn crm_scoring.main:app --port 8002` (or `create_app(settings)` in tests)."""
from __future__ import annotations

from fastapi import FastAPI

from crm_common.runtime import ServiceRuntime, create_service_app
from crm_scoring.scoring.consumer import ScoringHandler
from crm_scoring.settings import ScoringSettings


def build_runtime(settings: ScoringSettings, *, clock=None) -> ServiceRuntime:
    handler = ScoringHandler(settings) if clock is None else ScoringHandler(settings, clock=clock)
    runtime = ServiceRuntime(settings, handlers=[handler])
    runtime.clock = handler.clock
    return runtime


def create_app(settings: ScoringSettings | None = None, *, start_background: bool = True, clock=None) -> FastAPI:
    from crm_scoring.scoring.api import admin_router, reports_router, scores_router
    from crm_scoring.scoring.scheduler import RecomputeScheduler

    settings = settings or ScoringSettings()
    runtime = build_runtime(settings, clock=clock)
    app = create_service_app(
        runtime,
        title="Scoring",
        description="Customer value, ABC class, RFM, loyalty, satisfaction, credit, churn risk and lifetime value.",
        routers=[scores_router, reports_router, admin_router],
        start_background=start_background,
    )
    if start_background and settings.run_scheduler:
        scheduler = RecomputeScheduler(runtime, settings.recompute_interval_s)
        inner = app.router.lifespan_context

        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def lifespan(a):
            async with inner(a) as state:
                scheduler.start()
                try:
                    yield state
                finally:
                    await scheduler.stop()

        app.router.lifespan_context = lifespan
    return app


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return create_app()
    raise AttributeError(name)
