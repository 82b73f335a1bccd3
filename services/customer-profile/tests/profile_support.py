"""Shared helpers of the customer-profile tests (imported by name: the folder is on pytest's pythonpath)."""

from __future__ import annotations

import asyncio
import random
import uuid

from sqlalchemy import select

from crm_common.events import decode_envelope
from crm_common.migrations import upgrade
from crm_common.outbox import outbox_table
from crm_profile import ALEMBIC_INI

_rng = random.Random()


async def migrated_database(database_factory, kind: str) -> str:
    """A fresh database of that kind with the whole Alembic history applied."""
    url = await database_factory.create(kind, "profile")
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    return url


def unique_phone() -> str:
    """A valid Chinese mobile number, written the way people type it."""
    digits = f"{_rng.randrange(10**8):08d}"
    return f"139 {digits[:4]} {digits[4:]}"


def unique_tax_id() -> str:
    return "91310" + uuid.uuid4().hex[:13].upper()


def token() -> str:
    return uuid.uuid4().hex[:10]


def full_body(**overrides) -> dict:
    t = token()
    body = {
        "name": f"Shanghai Jade Trading {t} Co., Ltd.",
        "short_name": f"Jade {t}",
        "customer_type": "enterprise",
        "industry": "retail",
        "size_band": "medium",
        "region": "East China",
        "registered_address": "88 Century Avenue, Pudong, Shanghai",
        "tax_id": unique_tax_id(),
        "status": "active",
        "account_manager": "am-zhang",
        "source_channel": "exhibition",
        "first_order_date": "2025-03-01",
        "contract_number": f"C-{t}",
        "contract_start": "2025-01-01",
        "contract_end": "2026-12-31",
        "service_types": ["warehousing", "distribution"],
        "credit_limit": "500000.00",
        "payment_days": 45,
        "tags": ["key-account", f"t-{t}"],
        "contacts": [
            {
                "name": f"Wang Fang {t}",
                "role": "logistics manager",
                "phone": unique_phone(),
                "email": f"Wang.Fang.{t}@Jade-Example.COM",
                "preferred_channel": "sms",
                "language": "zh-CN",
                "timezone": "Asia/Shanghai",
                "quiet_hours_start": "22:00:00",
                "quiet_hours_end": "08:00:00",
                "marketing_consent": True,
                "marketing_consent_source": "signed contract",
            }
        ],
        "addresses": [
            {
                "kind": "pickup",
                "line1": "Warehouse 3, 1200 Jinqiao Road",
                "city": "Shanghai",
                "province": "Shanghai",
                "latitude": 31.26,
                "longitude": 121.6,
            }
        ],
    }
    body.update(overrides)
    return body


def slice_body(**overrides) -> dict:
    t = token()
    body = {
        "name": f"Ningbo Harbour Parts {t}",
        "customer_type": "enterprise",
        "industry": "manufacturing",
        "region": "East China",
        "contact": {"name": f"Li Lei {t}", "phone": unique_phone(), "email": f"li.lei.{t}@example.com"},
    }
    body.update(overrides)
    return body


async def outbox_events(db, *, key: str | None = None, type_: str | None = None) -> list:
    async with db.sessions() as session:
        query = select(outbox_table.c.body).order_by(outbox_table.c.id)
        if key is not None:
            query = query.where(outbox_table.c.key == key)
        if type_ is not None:
            query = query.where(outbox_table.c.event_type == type_)
        bodies = (await session.scalars(query)).all()
    return [decode_envelope(b) for b in bodies]


def error_locs(problem: dict) -> list[list[str]]:
    return [e["loc"] for e in problem.get("errors", [])]
