"""The scoring database: the metadata that every domain's tables join (`scoring.models`, `service_levels.models`; the
target of Alembic's env.py), and the migration history (`migrate`; sync, from async code use asyncio.to_thread).
Engine and sessions are crm_common.db.Database's."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from crm_common.migrations import upgrade

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"

metadata = MetaData()


def migrate(url: str, revision: str = "head") -> None:
    upgrade(ALEMBIC_INI, url, revision)


def all_tables() -> MetaData:
    """The metadata with every domain's tables registered."""
    from crm_scoring.scoring import models  # noqa: F401
    from crm_scoring.service_levels import models as _service_levels  # noqa: F401

    return metadata
