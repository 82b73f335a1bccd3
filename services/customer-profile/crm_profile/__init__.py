"""Customer-profile service: the customer master record."""

from pathlib import Path

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
SERVICE_NAME = "customer-profile"
