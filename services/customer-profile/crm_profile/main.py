"""ASGI entry point: `uvicorn crm_profile.main:app` (or `create_app(settings)` in tests)."""

from __future__ import annotations

from fastapi import FastAPI

from crm_common.audit import attach_audit_trail, audit_router
from crm_common.production import exit_if_refused
from crm_common.runtime import create_service_app
from crm_profile.accounts import api as accounts_api
from crm_profile.accounts import campaigns_api, kpis_api, reports_api, surveys_api, winback_api
from crm_profile.customers import api as customers_api
from crm_profile.runtime import build_runtime
from crm_profile.settings import ProfileSettings


def create_app(settings: ProfileSettings | None = None, *, start_background: bool = True) -> FastAPI:
    runtime = build_runtime(settings)
    attach_audit_trail(runtime)
    return create_service_app(
        runtime,
        title="Customer profile",
        description="The customer master record of the 3PL CRM: customers, contacts, addresses, interactions, "
        "duplicate detection and merge, privacy export and erasure.",
        routers=[
            customers_api.router,
            customers_api.contacts_router,
            audit_router,
            accounts_api.router,
            winback_api.router,
            kpis_api.router,
            reports_api.router,
            surveys_api.router,
            campaigns_api.router,
        ],
        start_background=start_background,
        problems={
            **customers_api.PROBLEMS,
            **accounts_api.PROBLEMS,
            **winback_api.PROBLEMS,
            **kpis_api.PROBLEMS,
            **reports_api.PROBLEMS,
            **surveys_api.PROBLEMS,
            **campaigns_api.PROBLEMS,
        },
    )


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return exit_if_refused(create_app)
    raise AttributeError(name)
