"""Apply this service's Alembic history (sync; from async code use asyncio.to_thread)."""
from __future__ import annotations

from pathlib import Path

from crm_common.migrations import upgrade

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


def migrate(url: str, revision: str = "head") -> None:
    upgrade(ALEMBIC_INI, url, revision)
