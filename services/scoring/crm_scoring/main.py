"""ASGI entry point: `uvicorn crm_scoring.main:app --port 8002` (or `create_app(settings)` in tests)."""

from __future__ import annotations

from fastapi import FastAPI

from crm_common.production import exit_if_refused
from crm_common.runtime import create_service_app
from crm_scoring.runtime import build_runtime
from crm_scoring.settings import ScoringSettings


def create_app(settings: ScoringSettings | None = None, *, start_background: bool = True, clock=None) -> FastAPI:
    from crm_scoring.reports.api import management_reports_router
    from crm_scoring.scoring.api import PROBLEMS, admin_router, reports_router, scores_router
    from crm_scoring.service_levels.api import PROBLEMS as SERVICE_LEVEL_PROBLEMS
    from crm_scoring.service_levels.api import service_levels_admin_router, service_levels_reports_router, service_levels_router

    settings = settings or ScoringSettings()
    runtime = build_runtime(settings, clock=clock)
    return create_service_app(
        runtime,
        title="Scoring",
        description="Customer value, ABC class, RFM, loyalty, satisfaction, credit, churn risk, lifetime value and service levels.",
        routers=[
            scores_router,
            reports_router,
            management_reports_router,
            admin_router,
            service_levels_router,
            service_levels_reports_router,
            service_levels_admin_router,
        ],
        start_background=start_background,
        problems={**PROBLEMS, **SERVICE_LEVEL_PROBLEMS},
    )


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return exit_if_refused(create_app)
    raise AttributeError(name)
