"""ASGI entry point: `uvicorn crm_profile.main:app` (or `create_app(settings)` in tests)."""
from __future__ import annotations

from fastapi import FastAPI

from crm_common.runtime import ServiceRuntime, create_service_app
from crm_profile.customers.api import router as customers_router
from crm_profile.settings import ProfileSettings


def create_app(settings: ProfileSettings | None = None, *, start_background: bool = True) -> FastAPI:
    settings = settings or ProfileSettings()
    runtime = ServiceRuntime(settings)
    return create_service_app(
        runtime,
        title="Customer profile",
        description="The customer master record of the 3PL CRM.",
        routers=[customers_router],
        start_background=start_background,
    )


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return create_app()
    raise AttributeError(name)
