"""The real customer-profile, complaints and scoring apps in-process (SQLite) behind the gateway;
notifications stays a fake. For tests that want the services' real contracts end to end."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from crm_common.migrations import upgrade
from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings
from gateway_support import FakeUpstreams, migrate


@dataclass
class RealStack:
    settings: GatewaySettings
    app: object
    client: httpx.AsyncClient
    complaints_db: object
    closers: list = field(default_factory=list)
    apps: dict = field(default_factory=dict)  # the real services' apps by upstream name

    async def close(self) -> None:
        await self.client.aclose()
        await self.app.state.gateway.aclose()
        await self.app.state.runtime.db.dispose()
        for close in self.closers:
            await close()


async def build_real_stack(database_factory) -> RealStack:
    import crm_complaints
    import crm_profile
    from crm_complaints.main import create_app as complaints_app
    from crm_complaints.settings import ComplaintsSettings
    from crm_profile.main import create_app as profile_app
    from crm_profile.settings import ProfileSettings
    from crm_scoring.db import ALEMBIC_INI as SCORING_INI
    from crm_scoring.main import create_app as scoring_app
    from crm_scoring.settings import ScoringSettings

    urls = {}
    for name, ini in (("profile", crm_profile.ALEMBIC_INI), ("complaints", crm_complaints.ALEMBIC_INI), ("scoring", SCORING_INI)):
        urls[name] = await database_factory.create("sqlite", f"real{name}")
        await asyncio.to_thread(upgrade, ini, urls[name])
    quiet = {"run_consumers": False, "run_outbox_relay": False}
    apps = {
        "profile": profile_app(ProfileSettings(database_url=urls["profile"], **quiet), start_background=False),
        "complaints": complaints_app(
            ComplaintsSettings(database_url=urls["complaints"], run_scheduler=False, **quiet), start_background=False
        ),
        "scoring": scoring_app(ScoringSettings(database_url=urls["scoring"], run_scheduler=False, **quiet), start_background=False),
    }
    gateway_url = await database_factory.create("sqlite", "realgw")
    await migrate(gateway_url)
    settings = GatewaySettings(database_url=gateway_url)
    transports = FakeUpstreams().transports(**{name: httpx.ASGITransport(app=app) for name, app in apps.items()})
    app = create_app(settings, start_background=False, transports=transports)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    stack = RealStack(settings, app, client, apps["complaints"].state.runtime.db)
    stack.closers = [a.state.runtime.stop for a in apps.values()]
    stack.apps = apps
    return stack


async def register_in_complaints(db, customer_id: str, phone: str) -> None:
    """What the complaints service learns from CustomerRegistered (its consumer is off in these tests)."""
    from crm_common.events.customers import ContactSnapshot, CustomerRegistered
    from crm_complaints.complaints import directory

    async with db.transaction() as session:
        await directory.apply_snapshot(
            session,
            CustomerRegistered(
                customer_id=customer_id,
                name="x",
                status="active",
                contacts=[ContactSnapshot(contact_id=f"{customer_id}-c", name="Li", phone=phone)],
            ),
        )
