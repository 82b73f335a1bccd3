"""ASGI entry point: `uvicorn crm_notifications.main:app` (or `create_app(settings)` in tests)."""

from __future__ import annotations

from fastapi import FastAPI

from crm_common.production import exit_if_refused
from crm_common.runtime import create_service_app
from crm_notifications.channels.base import Channel
from crm_notifications.clock import Clock
from crm_notifications.delivery import api as delivery_api
from crm_notifications.preferences import api as preferences_api
from crm_notifications.rules import api as rules_api
from crm_notifications.runtime import NotificationsRuntime
from crm_notifications.segments import api as segments_api
from crm_notifications.settings import NotificationsSettings
from crm_notifications.templates import api as templates_api

DOMAINS = (templates_api, rules_api, preferences_api, delivery_api, segments_api)


def create_app(
    settings: NotificationsSettings | None = None,
    *,
    start_background: bool = True,
    clock: Clock | None = None,
    channels: dict[str, Channel] | None = None,
) -> FastAPI:
    settings = settings or NotificationsSettings()
    runtime = NotificationsRuntime(settings, clock=clock, channels=channels)
    return create_service_app(
        runtime,
        title="Notifications",
        description="Event-driven outreach: rules, templates, preferences, quiet hours, digests, channels and a delivery log.",
        routers=[domain.router for domain in DOMAINS],
        start_background=start_background,
        problems={exc: to_problem for domain in DOMAINS for exc, to_problem in domain.PROBLEMS.items()},
    )


def __getattr__(name: str):
    if name == "app":  # built on first use so that importing the module reads no settings
        return exit_if_refused(create_app)
    raise AttributeError(name)
