"""Test helpers for the notifications service: a real SMTP server, a fake SMS/push provider,
a runtime on a fresh database with a manual clock, and event builders."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import json
import re
import socket
import uuid
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from sqlalchemy import MetaData, select

from crm_common.consumer import Delivery, InboxProcessor
from crm_common.events import encode_envelope, make_event
from crm_common.events.customers import ContactSnapshot, CustomerRegistered
from crm_common.migrations import upgrade
from crm_devbroker.testing import RefusingDeadLetters
from crm_notifications import ALEMBIC_INI
from crm_notifications.clock import ManualClock
from crm_notifications.runtime import NotificationsRuntime
from crm_notifications.settings import NotificationsSettings

# a Monday, 10:00 in Shanghai
T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collector:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on a free loopback port; `.messages` are the parsed emails it accepted."""

    def __init__(self):
        self.port = free_port()
        self.collector = _Collector()
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self):
        return self.collector.messages

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class FakeProvider:
    """A minimal HTTP/1.1 SMS/push provider on a loopback port that can be stopped and started again."""

    port: int = field(default_factory=free_port)
    received: list[dict] = field(default_factory=list)
    requests: list[tuple[str, dict, bytes]] = field(default_factory=list)  # every POST: path, headers, raw body
    status: str = "delivered"
    reply_status: int = 200
    _server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeProvider:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            headers = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            method, path, _ = request_line.decode().split(" ", 2)
            if method == "POST":
                self.requests.append((path, headers, body))
            if self.reply_status != 200:
                reply, status_line = b"{}", f"{self.reply_status} Error"
            elif method == "POST" and path == "/v1/messages":
                data = json.loads(body)
                data["idempotency_key"] = headers.get("idempotency-key")
                self.received.append(data)
                reply, status_line = json.dumps({"id": f"p{len(self.received)}", "status": self.status}).encode(), "200 OK"
            elif method == "POST" and path.startswith("/hooks/"):
                reply, status_line = b'{"ok":true}', "200 OK"
            else:
                reply, status_line = b'{"error":"not found"}', "404 Not Found"
            writer.write(
                f"HTTP/1.1 {status_line}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode()
                + reply
            )
            await writer.drain()
        finally:
            writer.close()


def settings_for(url: str, *, smtp_port: int = 1, provider_url: str = "http://127.0.0.1:1", **overrides) -> NotificationsSettings:
    values = dict(
        database_url=url,
        smtp_port=smtp_port,
        sms_provider_url=provider_url,
        push_provider_url=provider_url,
        run_consumers=False,
        run_outbox_relay=False,
        run_dispatcher=False,
        run_scans=False,
        smtp_timeout_s=3,
        provider_timeout_s=3,
    )
    values.update(overrides)
    return NotificationsSettings(**values)


async def migrated(url: str) -> None:
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)


async def make_runtime(settings: NotificationsSettings, clock: ManualClock, *, seed: bool = True) -> NotificationsRuntime:
    runtime = NotificationsRuntime(settings, clock=clock)
    if seed:
        await runtime.seed_defaults()
    return runtime


class EventFeeder:
    """Feeds envelopes through the real inbox processor (the consumer without a broker)."""

    def __init__(self, runtime: NotificationsRuntime):
        self.processor = InboxProcessor(runtime.db, runtime.handler, RefusingDeadLetters(), max_attempts=1)
        self.offset = 0

    async def feed(self, *envelopes) -> None:
        deliveries = []
        for envelope in envelopes:
            self.offset += 1
            deliveries.append(Delivery("t", 0, self.offset, envelope.key.encode(), encode_envelope(envelope)))
        await self.processor.process(deliveries)


def event(payload, key: str | None = None, occurred_at: dt.datetime | None = None):
    return make_event(payload, key=key or getattr(payload, "customer_id", None) or "c", producer="test", occurred_at=occurred_at or T0)


def customer_registered(customer_id: str, contacts: list[dict], **fields) -> object:
    snapshot = CustomerRegistered(
        customer_id=customer_id,
        name=fields.pop("name", f"Customer {customer_id}"),
        status=fields.pop("status", "active"),
        contacts=[ContactSnapshot(**c) for c in contacts],
        **fields,
    )
    return event(snapshot)


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


async def find_person(db, *, name: str, email: str, phone: str) -> list[str]:
    """Every "table.column: kind" of the database whose text holds the person's name or email (case-insensitive)
    or phone (compared by digits, so any formatting matches; `phone` is the national number)."""
    needles = {"name": name.lower(), "email": email.lower(), "phone": digits(phone)}
    metadata = MetaData()
    hits: set[str] = set()
    async with db.engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if re.search(r"CHAR|TEXT|JSON|CLOB", str(c.type).upper())]
            if not columns:
                continue
            for row in (await connection.execute(select(*columns))).all():
                for column, value in zip(columns, row):
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    for kind, needle in needles.items():
                        if (needle in digits(text)) if kind == "phone" else (needle in text.lower()):
                            hits.add(f"{table.name}.{column.name}: {kind}")
    return sorted(hits)
