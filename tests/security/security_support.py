"""The whole platform in one process for the security tests: the four real services and the gateway,
each on its own migrated database, the gateway's upstream clients on httpx.ASGITransport to the
real service apps, and an in-memory bus (`Stack.pump`) that moves every service's outbox rows to
every consumer handler of every service through crm_common.consumer.InboxProcessor (the same code
path as Kafka delivery, minus the broker). Relays, consumers and schedulers are off.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import MetaData, select

from crm_common.consumer import Delivery, InboxProcessor
from crm_common.events import decode_envelope, topic_for
from crm_common.outbox import outbox_table
from crm_gateway.auth import mint_token
from fuzz_support import BUILDERS, AppUnderTest, build_gateway


class NoDeadLetters:
    """A dead letter during these tests is a failure of the test setup or a real bug: keep them."""

    def __init__(self):
        self.sent: list[tuple[str, bytes, list]] = []

    async def send(self, topic, key, value, headers=None):
        self.sent.append((topic, value, list(headers or [])))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


@dataclass
class Stack:
    services: dict[str, AppUnderTest]
    gateway: AppUnderTest
    processors: dict[str, list[InboxProcessor]] = field(default_factory=dict)
    dead: NoDeadLetters = field(default_factory=NoDeadLetters)
    forwarded: set[str] = field(default_factory=set)
    offsets: dict[str, int] = field(default_factory=dict)
    delivered: int = 0

    @property
    def client(self) -> httpx.AsyncClient:
        return self.gateway.client

    @property
    def settings(self):
        return self.gateway.app.state.gateway.settings

    def db(self, name: str):
        return (self.gateway if name == "gateway" else self.services[name]).app.state.runtime.db

    def headers(self, role: str, subject: str | None = None, **claims: Any) -> dict[str, str]:
        s = self.settings
        token = mint_token(
            s.signing_key(), subject=subject or f"{role}-sec", role=role, issuer=s.jwt_issuer, audience=s.jwt_audience, **claims
        )
        return {"Authorization": f"Bearer {token}"}

    async def pump(self, rounds: int = 10) -> int:
        """Deliver every not-yet-forwarded outbox event of every database to every interested handler,
        until nothing new appears (a consumer's own events are delivered in the next round)."""
        total = 0
        for _ in range(rounds):
            batch = []
            for name in ("gateway", *self.services):
                async with self.db(name).sessions() as session:
                    rows = (await session.execute(select(outbox_table.c.event_id, outbox_table.c.body).order_by(outbox_table.c.id))).all()
                for event_id, body in rows:
                    if event_id not in self.forwarded:
                        self.forwarded.add(event_id)
                        batch.append(body.encode())
            if not batch:
                return total
            for value in batch:
                envelope = decode_envelope(value)
                topic = topic_for(envelope.type)
                offset = self.offsets.get(topic, 0)
                self.offsets[topic] = offset + 1
                delivery = Delivery(topic, 0, offset, envelope.key.encode(), value)
                for processors in self.processors.values():
                    for processor in processors:
                        if topic in processor.handler.topics:
                            await processor.process([delivery])
                total += 1
        self.delivered += total
        return total

    async def aclose(self) -> None:
        for target in (self.gateway, *self.services.values()):
            await target.aclose()


async def build_stack(database_factory, kind: str = "sqlite", **gateway_overrides) -> Stack:
    services = {}
    for name, build in BUILDERS.items():
        services[name] = await build(database_factory, kind)
    gateway = await build_gateway(database_factory, services, kind)
    stack = Stack(services, gateway)
    for name, target in services.items():
        runtime = target.app.state.runtime
        stack.processors[name] = [
            InboxProcessor(runtime.db, consumer.handler, stack.dead, max_attempts=2, retry_delay_s=0) for consumer in runtime.consumers
        ]
    return stack


# ------------------------------------------------------------------ searching a database for a person

TEXTUAL = re.compile(r"CHAR|TEXT|JSON|CLOB|STRING|UUID", re.IGNORECASE)


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


async def find_person(db, needles: dict[str, str]) -> list[str]:
    """Every (table.column: kind) in which one of the person's identifiers appears. `needles`:
    {"name": ..., "email": ..., "phone": national digits}. Emails and names are compared
    case-insensitively; phones by digits, so '+86 139-8765 4321' and '13987654321' both match."""
    metadata = MetaData()
    async with db.engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        hits = []
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if TEXTUAL.search(str(c.type)) or str(c.type).upper() in ("VARCHAR", "NVARCHAR")]
            if not columns:
                continue
            rows = (await connection.execute(select(*columns))).all()
            for row in rows:
                for column, value in zip(columns, row):
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else str(value)
                    lowered = text.lower()
                    for kind, needle in needles.items():
                        found = digits(text).find(needle) >= 0 if kind == "phone" else needle.lower() in lowered
                        if found:
                            hits.append(f"{table.name}.{column.name}: {kind}")
    return sorted(set(hits))
