"""ASGI entry point: `uvicorn crm_notifications.main:app` (or `create_app(settings)` in tests)."""
from __future__ import annotations

from fastapi import FastAPI

from crm_common.production import exit_if_refused
from crm_common.runtime import create_service_app
from crm_notifications.channels.base import Channel
from crm_notifications.clock import Clock
from crm_notifications.delivery.api import router as deliveries_router
from crm_notifications.preferences.api import router as preferences_router
from crm_notifications.rules.api import router as rules_router
from crm_notifications.runtime import NotificationsRuntime
from crm_notifications.segments.api import router as segments_router
from crm_notifications.settings import NotificationsSettings
from crm_notifications.templates.api import router as templates_router


def create_app(settings: NotificationsSettings | None = None, *, start_background: bool = True, clock: Clock | None = None,
               channels: dict[str, Channel] | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    runtime = NotificationsRuntime(settings, clock=clock, channels=channels)
    return create_service_app(
        runtime,
        title="Notifications",
        description="Event-driven outreach: rules, templates, preferences, quiet hours, digests, channels and a delivery log.",
        routers=[templates_router, rules_router, preferences_router, deliveries_router, segments_router],
        start_background=start_background,
    )


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return exit_if_refused(create_app)
    raise AttributeError(name)
