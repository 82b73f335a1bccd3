"""Throughput of the notifications pipeline: events -> queued messages (inbox processor + rules) and
queued messages -> sent (dispatcher with a no-op channel, so the figure is ours, not the SMTP server's).

    .venv/bin/python services/notifications/bench/bench_pipeline.py [sqlite|postgres] [events]

Prints figures; asserts nothing. PostgreSQL from TEST_POSTGRES_URL (default postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
import uuid

import asyncpg

from crm_common.consumer import Delivery, InboxProcessor
from crm_common.events import encode_envelope, make_event
from crm_common.events.complaints import ComplaintFiled
from crm_common.events.customers import ContactSnapshot, CustomerRegistered
from crm_common.events.logistics import ShipmentDelayed
from crm_common.migrations import upgrade
from crm_notifications import ALEMBIC_INI
from crm_notifications.channels.base import ChannelResult
from crm_notifications.clock import ManualClock
from crm_notifications.runtime import NotificationsRuntime
from crm_notifications.settings import NotificationsSettings

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


class NullChannel:
    def __init__(self, name):
        self.name = name
        self.sent = 0

    async def send(self, message):
        self.sent += 1
        return ChannelResult("sent")


class NoDLQ:
    async def send(self, *a, **k):
        raise AssertionError("dead letter in benchmark")


async def database(kind: str) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db", None
    admin = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"crm_nfbench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()

    async def drop():
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await c.close()

    return admin.rpartition("/")[0] + "/" + name, drop


def deliveries(envelopes, start=0):
    return [Delivery("bench", 0, start + i, e.key.encode(), encode_envelope(e)) for i, e in enumerate(envelopes)]


async def main(kind: str, n_events: int) -> None:
    url, drop = await database(kind)
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    clock = ManualClock(T0)
    channels = {name: NullChannel(name) for name in ("email", "sms", "push", "webhook", "inbox")}
    settings = NotificationsSettings(
        database_url=url,
        run_consumers=False,
        run_outbox_relay=False,
        run_dispatcher=False,
        run_scans=False,
        cap_per_day=10_000,
        cap_per_week=10_000,
        dispatcher_batch_size=500,
    )
    runtime = NotificationsRuntime(settings, clock=clock, channels=channels)
    await runtime.seed_defaults()
    statements = [0]

    from sqlalchemy import event as sa_event

    @sa_event.listens_for(runtime.db.engine.sync_engine, "before_cursor_execute")
    def _count(*_args):
        statements[0] += 1

    processor = InboxProcessor(runtime.db, runtime.handler, NoDLQ())
    customers = max(1, n_events // 10)
    registrations = [
        make_event(
            CustomerRegistered(
                customer_id=f"c{i}",
                name=f"C{i}",
                status="active",
                contacts=[ContactSnapshot(contact_id=f"k{i}", email=f"k{i}@example.com", language="en")],
            ),
            key=f"c{i}",
            producer="bench",
        )
        for i in range(customers)
    ]
    for start in range(0, len(registrations), 500):
        await processor.process(deliveries(registrations[start : start + 500], start))

    complaints = [
        make_event(
            ComplaintFiled(
                complaint_id=f"q{i}",
                complaint_number=f"CP-{i}",
                customer_id=f"c{i % customers}",
                category="delay",
                priority="P3",
                channel="web",
                contact_id=f"k{i % customers}",
                filed_at=T0,
            ),
            key=f"c{i % customers}",
            producer="bench",
        )
        for i in range(n_events // 2)
    ]
    delays = [
        make_event(
            ShipmentDelayed(order_id=f"o{i}", customer_id=f"c{i % customers}", delay_minutes=60, reported_at=T0),
            key=f"c{i % customers}",
            producer="bench",
        )
        for i in range(n_events - len(complaints))
    ]
    events = [e for pair in zip(complaints, delays) for e in pair] + complaints[len(delays) :] + delays[len(complaints) :]
    statements[0] = 0
    started = time.perf_counter()
    for start in range(0, len(events), 500):
        await processor.process(deliveries(events[start : start + 500], 10_000_000 + start))
    ingest = time.perf_counter() - started
    ingest_statements = statements[0]
    statements[0] = 0

    clock.advance(seconds=901)  # close every digest window
    started = time.perf_counter()
    sent = 0
    while True:
        handled = await runtime.dispatcher.run_once()
        if not handled:
            break
        sent += handled
    dispatch = time.perf_counter() - started
    dispatch_statements = statements[0]
    print(f"[{kind}] {len(events)} events ({len(complaints)} ComplaintFiled, {len(delays)} ShipmentDelayed over {customers} customers)")
    print(
        f"[{kind}] ingest  : {ingest:.2f} s  -> {len(events) / ingest:,.0f} events/s (inbox + rules + notification rows + queue), "
        f"{ingest_statements / len(events):.1f} SQL statements/event"
    )
    print(
        f"[{kind}] dispatch: {dispatch:.2f} s  -> {sent / dispatch:,.0f} messages/s ({sent} messages: {len(complaints)} acks + "
        f"{sent - len(complaints)} digests; policy + render + null channel + log + outbox), "
        f"{dispatch_statements / max(sent, 1):.1f} SQL statements/message"
    )
    print(f"[{kind}] load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    await runtime.stop()
    if drop:
        await drop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite", int(sys.argv[2]) if len(sys.argv) > 2 else 2000))
