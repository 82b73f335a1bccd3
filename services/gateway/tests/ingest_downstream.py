"""The gateway's ingestion with every real consumer of what it publishes, without a broker.

`Downstream.post(batch)` posts to `POST /api/v1/events`, then hands the gateway's new outbox rows (exactly the
bytes its relay would publish) to the real inbox processors of scoring, complaints, notifications and the
gateway's own read model, each on its own database (SQLite or PostgreSQL). Their dead letters are collected, so a test can
check that what the gateway accepted was applied and nothing was dead-lettered."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
from sqlalchemy import func, select

from crm_common.consumer import Delivery, InboxProcessor, inbox_table
from crm_common.db import Database
from crm_common.migrations import upgrade
from crm_common.outbox import outbox_table
from crm_devbroker.testing import CollectingDeadLetters
from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings
from gateway_support import FakeUpstreams, migrate, role_headers


@dataclass
class Consumer:
    processor: InboxProcessor
    dead: CollectingDeadLetters

    @property
    def db(self) -> Database:
        return self.processor.db

    def wants(self, topic: str, event_type: str) -> bool:
        handler = self.processor.handler
        return topic in handler.topics and (handler.event_types is None or event_type in handler.event_types)

    async def outcomes(self) -> dict[str, str]:
        """event_id -> inbox outcome ("applied" / "dead_letter") of this consumer."""
        name = self.processor.handler.name
        async with self.db.sessions() as session:
            rows = await session.execute(select(inbox_table.c.event_id, inbox_table.c.outcome).where(inbox_table.c.consumer == name))
            return dict(rows.all())


@dataclass
class Downstream:
    client: httpx.AsyncClient
    settings: GatewaySettings
    app: object
    consumers: dict[str, Consumer]
    closers: list = field(default_factory=list)
    last_outbox_id: int = 0
    offset: int = 0

    @property
    def gateway_db(self) -> Database:
        return self.app.state.runtime.db

    async def post(self, batch) -> httpx.Response:
        response = await self.client.post("/api/v1/events", json=batch, headers=role_headers(self.settings, "tms"))
        await self.deliver_new_outbox_rows()
        return response

    async def deliver_new_outbox_rows(self) -> list[dict]:
        async with self.gateway_db.sessions() as session:
            rows = (
                (await session.execute(select(outbox_table).where(outbox_table.c.id > self.last_outbox_id).order_by(outbox_table.c.id)))
                .mappings()
                .all()
            )
        if not rows:
            return []
        self.last_outbox_id = rows[-1]["id"]
        for consumer in self.consumers.values():
            deliveries = []
            for row in rows:
                if consumer.wants(row["topic"], row["event_type"]):
                    self.offset += 1
                    deliveries.append(Delivery(row["topic"], 0, self.offset, row["key"].encode(), row["body"].encode()))
            if deliveries:
                await consumer.processor.process(deliveries)
        return [dict(r) for r in rows]

    def dead_letters(self) -> list[tuple[str, str, dict]]:
        return [(name, topic, headers) for name, c in self.consumers.items() for topic, _, _, headers in c.dead.sent]

    async def outbox_count(self) -> int:
        async with self.gateway_db.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(outbox_table)))

    async def close(self) -> None:
        await self.client.aclose()
        await self.app.state.gateway.aclose()
        await self.gateway_db.dispose()
        for consumer in self.consumers.values():
            if consumer.db is not self.gateway_db:  # the gateway's read model shares the gateway's database
                await consumer.db.dispose()


async def build_downstream(database_factory, kind: str = "sqlite") -> Downstream:
    import crm_complaints
    import crm_notifications
    from crm_complaints.complaints.handlers import ShipmentIncidentHandler
    from crm_complaints.settings import ComplaintsSettings
    from crm_gateway.dashboard.handlers import DashboardReadModel
    from crm_notifications.delivery.handlers import NotificationsHandler
    from crm_notifications.runtime import NotificationsRuntime
    from crm_notifications.settings import NotificationsSettings
    from crm_scoring.db import ALEMBIC_INI as SCORING_INI
    from crm_scoring.scoring.handlers import ScoringHandler
    from crm_scoring.settings import ScoringSettings

    urls = {}
    for name, ini in (
        ("scoring", SCORING_INI),
        ("complaints", crm_complaints.ALEMBIC_INI),
        ("notifications", crm_notifications.ALEMBIC_INI),
    ):
        urls[name] = await database_factory.create(kind, f"down{name}")
        await asyncio.to_thread(upgrade, ini, urls[name])
    gateway_url = await database_factory.create(kind, "downgw")
    await migrate(gateway_url)
    settings = GatewaySettings(database_url=gateway_url)
    app = create_app(settings, start_background=False, transports=FakeUpstreams().transports())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")

    notifications = NotificationsRuntime(
        NotificationsSettings(
            database_url=urls["notifications"], run_consumers=False, run_outbox_relay=False, run_dispatcher=False, run_scans=False
        )
    )
    await notifications.seed_defaults()

    def consumer(db: Database, handler) -> Consumer:
        dead = CollectingDeadLetters()
        return Consumer(InboxProcessor(db, handler, dead, max_attempts=1, retry_delay_s=0.0), dead)

    consumers = {
        "scoring": consumer(Database(urls["scoring"]), ScoringHandler(ScoringSettings(database_url=urls["scoring"], run_scheduler=False))),
        "complaints": consumer(Database(urls["complaints"]), ShipmentIncidentHandler(ComplaintsSettings(database_url=urls["complaints"]))),
        "notifications": consumer(notifications.db, NotificationsHandler()),
        "gateway": consumer(app.state.runtime.db, DashboardReadModel()),
    }
    return Downstream(client, settings, app, consumers)
