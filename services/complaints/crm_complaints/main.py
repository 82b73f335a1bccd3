"""ASGI entry point: `uvicorn crm_complaints.main:app` (or `create_app(settings)` in tests)."""

from __future__ import annotations

from fastapi import FastAPI

from crm_common.audit import attach_audit_trail, audit_router
from crm_common.production import exit_if_refused
from crm_common.runtime import create_service_app
from crm_complaints.complaints.api import router as complaints_router
from crm_complaints.problems import install_complaint_problems
from crm_complaints.runtime import ComplaintsRuntime
from crm_complaints.settings import ComplaintsSettings
from crm_complaints.setup.api import install_setup_problems
from crm_complaints.setup.api import router as setup_router
from crm_complaints.survey.api import router as survey_router


def create_app(settings: ComplaintsSettings | None = None, *, start_background: bool = True) -> FastAPI:
    settings = settings or ComplaintsSettings()
    runtime = ComplaintsRuntime(settings)
    attach_audit_trail(runtime)
    app = create_service_app(
        runtime,
        title="Complaints",
        description="The one complaint center: intake, routing, SLA clocks, escalation, call-center status, callback survey.",
        routers=[complaints_router, setup_router, survey_router, audit_router],
        start_background=start_background,
    )
    install_complaint_problems(app)
    install_setup_problems(app)
    return app


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return exit_if_refused(create_app)
    raise AttributeError(name)
