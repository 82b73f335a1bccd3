"""Shared helpers for the complaints tests (imported by module name; listed under pythonpath in pytest.ini)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import httpx

from crm_common.db import utcnow
from crm_common.events.customers import ContactSnapshot, CustomerRegistered
from crm_common.migrations import upgrade
from crm_complaints import ALEMBIC_INI
from crm_complaints.complaints import directory
from crm_complaints.main import create_app
from crm_complaints.runtime import ComplaintsRuntime
from crm_complaints.settings import ComplaintsSettings
from crm_devbroker.testing import edge_auth

ALL_WEEK = [(d, 0, 1440) for d in range(7)]
STAFF = {"X-Actor-Id": "sup-1", "X-Actor-Role": "supervisor"}


def agent_headers(agent_id: str, team: str, role: str = "agent") -> dict:
    return {"X-Actor-Id": agent_id, "X-Actor-Role": role, "X-Actor-Team": team}


@dataclass
class Env:
    url: str
    settings: ComplaintsSettings
    app: object
    runtime: ComplaintsRuntime
    client: httpx.AsyncClient

    @property
    def db(self):
        return self.runtime.db


async def migrated_url(database_factory, kind: str, label: str = "complaints") -> str:
    url = await database_factory.create(kind, label)
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    return url


# every table of the service, children first (for a reset between tests that share one migrated database)
TABLES = (
    "timeline_entries",
    "complaint_references",
    "sla_clocks",
    "idempotency_records",
    "complaints",
    "agent_shifts",
    "agents",
    "routing_rules",
    "teams",
    "directory_contacts",
    "directory_customers",
    "outbox",
    "inbox",
    "relay_marks",
    "dead_letters",
)


async def reset_database(url: str) -> None:
    from sqlalchemy import text

    from crm_common.db import Database

    db = Database(url)
    try:
        async with db.engine.begin() as connection:
            if db.dialect == "postgresql":
                await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            else:
                for table in TABLES:
                    await connection.execute(text(f"DELETE FROM {table}"))
    finally:
        await db.dispose()


async def make_env(database_factory, kind: str, kafka=None, url: str | None = None, **overrides) -> Env:
    url = url or await migrated_url(database_factory, kind)
    values = {"database_url": url, "run_scheduler": False, "run_consumers": False, "run_outbox_relay": False}
    values.update(overrides)
    if kafka is not None:
        values["kafka"] = kafka
    settings = ComplaintsSettings(**values)
    app = create_app(settings, start_background=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://complaints", auth=edge_auth(app))
    return Env(url, settings, app, app.state.runtime, client)


async def close_env(env: Env) -> None:
    await env.client.aclose()
    await env.runtime.stop()


async def seed_customer(
    db,
    customer_id: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    region: str | None = None,
    tier: str | None = None,
    credit_grade: str | None = None,
    contact_id: str | None = None,
    language: str = "zh-CN",
    account_manager: str | None = None,
) -> None:
    contacts = []
    if phone or email:
        contacts.append(
            ContactSnapshot(contact_id=contact_id or f"{customer_id}-c1", name="Contact", phone=phone, email=email, language=language)
        )
    async with db.transaction() as session:
        await directory.apply_snapshot(
            session,
            CustomerRegistered(
                customer_id=customer_id,
                name=f"Customer {customer_id}",
                region=region,
                status="active",
                contacts=contacts,
                account_manager=account_manager,
            ),
        )
        if tier or credit_grade:
            await directory.apply_tier(session, customer_id, tier=tier, credit_grade=credit_grade)


async def seed_team(
    db,
    team_id: str,
    agents: dict[str, list[tuple[int, int, int]]] | None = None,
    *,
    calendar: dict | None = None,
    strategy: str = "least_load",
    team_lead: str | None = None,
    manager: str | None = None,
) -> None:
    async with db.transaction() as session:
        await directory.put_team(
            session,
            team_id,
            calendar=calendar or {"timezone": "Asia/Shanghai"},
            strategy=strategy,
            team_lead=team_lead or f"{team_id}-lead",
            manager=manager or f"{team_id}-manager",
        )
        for agent_id, shifts in (agents or {}).items():
            await directory.put_agent(session, agent_id, team_id=team_id, shifts=shifts)


def complaint_body(**overrides) -> dict:
    body = {
        "customer_id": "cust-1",
        "order_ids": ["ORD-1"],
        "tracking_numbers": ["SF100200300"],
        "category": "delay",
        "description": "Goods arrived two days late",
        "channel": "web",
        "reporter": {"name": "Li Lei", "phone": "+86 138 0013 8000", "email": "li@example.com"},
        "desired_outcome": "refund of the express fee",
        "claimed_amount": "120.00",
        "attachments": [{"filename": "photo.jpg", "content_type": "image/jpeg", "size_bytes": 2048}],
    }
    body.update(overrides)
    return body


def shanghai(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone(dt.timedelta(hours=8))).astimezone(dt.UTC)


def now() -> dt.datetime:
    return utcnow()
