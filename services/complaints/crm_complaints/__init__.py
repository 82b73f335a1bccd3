"""Complaints service: the one complaint center."""

from pathlib import Path

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
SERVICE_NAME = "complaints"
