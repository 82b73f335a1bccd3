"""Notifications service: event-driven outreach with templates, channels, preferences and a delivery log."""

from pathlib import Path

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
SERVICE_NAME = "notifications"
