"""ASGI entry point: `uvicorn crm_profile.main:app` (or `create_app(settings)` in tests)."""
from __future__ import annotations

from fastapi import FastAPI, Request
from sqlalchemy.orm.exc import StaleDataError

from crm_common.audit import attach_audit_trail, audit_router
from crm_common.idempotency import keep_idempotency_records
from crm_common.problems import Problem, problem_response
from crm_common.production import exit_if_refused
from crm_common.runtime import ServiceRuntime, create_service_app
from crm_profile.accounts.api import install_workspace_problems
from crm_profile.accounts.api import router as workspace_router
from crm_profile.accounts.handlers import AccountComplaintsHandler, AccountOrdersHandler, AccountScoresHandler
from crm_profile.accounts.kpis_api import install_kpi_problems
from crm_profile.accounts.kpis_api import router as kpis_router
from crm_profile.accounts.winback_api import install_winback_problems
from crm_profile.accounts.winback_api import router as winback_router
from crm_profile.customers.api import contacts_router
from crm_profile.customers.api import router as customers_router
from crm_profile.settings import ProfileSettings


def build_runtime(settings: ProfileSettings | None = None) -> ServiceRuntime:
    """The database, the outbox and its relay, the consumers of scoring's announcements and of the orders (the account
    manager's workspace, win-back) and the purge of expired idempotency records."""
    settings = settings or ProfileSettings()
    runtime = ServiceRuntime(settings, handlers=[AccountScoresHandler(settings), AccountOrdersHandler(), AccountComplaintsHandler()])
    keep_idempotency_records(runtime)
    return runtime


def create_app(settings: ProfileSettings | None = None, *, start_background: bool = True) -> FastAPI:
    runtime = build_runtime(settings)
    attach_audit_trail(runtime)
    app = create_service_app(
        runtime,
        title="Customer profile",
        description="The customer master record of the 3PL CRM: customers, contacts, addresses, interactions, "
        "duplicate detection and merge, privacy export and erasure.",
        routers=[customers_router, contacts_router, audit_router, workspace_router, winback_router, kpis_router],
        start_background=start_background,
    )

    install_workspace_problems(app)
    install_winback_problems(app)
    install_kpi_problems(app)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError):  # a concurrent writer won between our read and write
        return problem_response(
            Problem(412, "Precondition failed", "The record changed while your update was applied; read it again."), request
        )

    return app


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return exit_if_refused(create_app)
    raise AttributeError(name)
