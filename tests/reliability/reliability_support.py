"""Helpers for the reliability tests: a customer-profile app on a chosen database and broker."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select, text

from crm_common.db import Database
from crm_common.outbox import outbox_table
from crm_profile import ALEMBIC_INI
from crm_profile.main import create_app
from crm_profile.settings import ProfileSettings

_phones = itertools.count(13800000000)


def profile_app(database_url: str, kafka, **overrides):
    settings = ProfileSettings(database_url=database_url, kafka=kafka, outbox_poll_interval_s=0.05, log_json=False, **overrides)
    return create_app(settings)


def new_customer_body(name: str = "Acme Freight") -> dict:
    phone = next(_phones)
    return {"name": f"{name} {phone}", "industry": "retail", "region": "East", "contact": {"name": "Li Lei", "phone": f"+86{phone}"}}


async def count_rows(db: Database, table: str) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(text(f"SELECT COUNT(*) FROM {table}")))


async def outbox_state(db: Database) -> tuple[int, set[str]]:
    """(pending rows, event ids of every row)."""
    async with db.sessions() as session:
        pending = await session.scalar(select(func.count()).where(outbox_table.c.published_at.is_(None)))
        ids = set((await session.execute(select(outbox_table.c.event_id))).scalars())
    return int(pending), ids


__all__ = ["ALEMBIC_INI", "count_rows", "new_customer_body", "outbox_state", "profile_app"]
