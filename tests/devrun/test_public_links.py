"""Links that `make run` puts in emails (survey, satisfaction survey, unsubscribe) point at its own gateway, whatever
CRM_PORT_BASE moves it to: each service's default is the gateway on port 8000."""

from __future__ import annotations

import importlib
import sys


def test_every_public_link_points_at_the_gateway_of_this_port_base(monkeypatch):
    monkeypatch.setenv("CRM_PORT_BASE", "31000")
    sys.modules.pop("devrun", None)
    devrun = importlib.import_module("devrun")
    try:
        gateway = next(s for s in devrun.SERVICES if s.name == "gateway").url
        assert ":31000" in gateway
        links = {
            key: value
            for service in devrun.SERVICES
            for key, value in devrun.service_env(service, "127.0.0.1:9").items()
            if key.endswith("_BASE_URL")
        }
        assert set(links) >= {
            "COMPLAINTS_SURVEY_BASE_URL",
            "PROFILE_SURVEY_BASE_URL",
            "NOTIFICATIONS_SURVEY_BASE_URL",
            "NOTIFICATIONS_PUBLIC_BASE_URL",
        }
        assert all(value.startswith(gateway + "/") for value in links.values()), links
    finally:
        sys.modules.pop("devrun", None)
