"""The end-to-end acceptance run (promise 8): the whole platform in one process on the real broker and
fresh PostgreSQL databases, a generator of logistics events and complaints through the gateway,
faults injected at random, and an oracle computed from the generator's inputs alone.

Every service is its real ASGI app with its real runtime (outbox relay and consumers on Kafka). The
gateway reaches the services, and the generator reaches the gateway, through `SwitchTransport`:
an httpx transport whose app can be replaced, so that a service can be restarted (a new app and
runtime on the same database) while traffic flows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text

from crm_common.metrics import EVENTS_CONSUMED
from crm_common.migrations import upgrade
from crm_common.outbox import outbox_table
from crm_gateway.auth import mint_token

SERVICES = ("profile", "scoring", "complaints", "notifications")


class SwitchTransport(httpx.AsyncBaseTransport):
    """ASGI transport to whichever app is current (a restart swaps it)."""

    def __init__(self, app):
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await httpx.ASGITransport(app=self.app, raise_app_exceptions=False).handle_async_request(request)


def _alembic_ini(name: str) -> Path:
    import crm_complaints
    import crm_gateway
    import crm_notifications
    import crm_profile
    from crm_scoring.db import ALEMBIC_INI as scoring_ini

    return {
        "profile": crm_profile.ALEMBIC_INI,
        "scoring": scoring_ini,
        "complaints": crm_complaints.ALEMBIC_INI,
        "notifications": crm_notifications.ALEMBIC_INI,
        "gateway": Path(crm_gateway.__file__).resolve().parents[1] / "alembic.ini",
    }[name]


def build_app(name: str, url: str, kafka, transports=None):
    """A fresh app (and runtime) of one service on its database; background work is started by the caller."""
    common = {"database_url": url, "kafka": kafka, "outbox_poll_interval_s": 0.05, "log_json": False}
    if name == "profile":
        from crm_profile.main import create_app
        from crm_profile.settings import ProfileSettings

        return create_app(ProfileSettings(**common), start_background=False)
    if name == "scoring":
        from crm_scoring.main import create_app
        from crm_scoring.settings import ScoringSettings

        return create_app(ScoringSettings(**common, run_scheduler=False), start_background=False)
    if name == "complaints":
        from crm_complaints.main import create_app
        from crm_complaints.settings import ComplaintsSettings

        return create_app(ComplaintsSettings(**common, run_scheduler=False), start_background=False)
    if name == "notifications":
        from crm_notifications.main import create_app
        from crm_notifications.settings import NotificationsSettings

        return create_app(NotificationsSettings(**common, run_dispatcher=False, run_scans=False), start_background=False)
    if name == "gateway":
        from crm_gateway.main import create_app
        from crm_gateway.settings import GatewaySettings

        settings = GatewaySettings(**common, rate_limit_enabled=False, upstream_retries=2)
        return create_app(settings, start_background=False, transports=transports)
    raise ValueError(name)


@dataclass
class Platform:
    kafka: Any
    urls: dict[str, str]
    apps: dict[str, Any] = field(default_factory=dict)
    transports: dict[str, SwitchTransport] = field(default_factory=dict)
    retired: list[Any] = field(default_factory=list)
    faults: Counter = field(default_factory=Counter)

    @classmethod
    async def start(cls, database_factory, kafka, kind: str = "postgres") -> Platform:
        urls = {}
        for name in (*SERVICES, "gateway"):
            urls[name] = await database_factory.create(kind, f"e2e{name[:5]}")
            await asyncio.to_thread(upgrade, _alembic_ini(name), urls[name])
        platform = cls(kafka, urls)
        for name in (*SERVICES, "gateway"):
            app = build_app(name, urls[name], kafka, transports=platform.transports if name == "gateway" else None)
            await app.state.runtime.start()
            platform.apps[name] = app
            platform.transports[name] = SwitchTransport(app)
        return platform

    def db(self, name: str):
        return self.apps[name].state.runtime.db

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transports["gateway"], base_url="http://gateway", timeout=30)

    def headers(self, role: str, subject: str | None = None, **claims: Any) -> dict[str, str]:
        settings = self.apps["gateway"].state.gateway.settings
        token = mint_token(
            settings.signing_key(),
            subject=subject or f"{role}-e2e",
            role=role,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            **claims,
        )
        return {"Authorization": f"Bearer {token}"}

    # ---------------------------------------------------------------- faults

    async def restart(self, name: str, *, wait_for_join: bool = True) -> None:
        """A new app and runtime on the same database take over; the old runtime is stopped (its relay may
        have published without marking: duplicates, absorbed by the inboxes).

        wait_for_join: like a rolling update gated on the consumers, the old runtime leaves once the new
        consumers have joined; otherwise it leaves while they are still joining (a plain rolling update),
        which on Tansu can leave the group waiting for a departed leader until the join watchdog repairs it."""
        old = self.apps[name]
        new = build_app(name, self.urls[name], self.kafka, transports=self.transports if name == "gateway" else None)
        await new.state.runtime.start()
        if wait_for_join:
            await asyncio.wait_for(asyncio.gather(*(c.started.wait() for c in new.state.runtime.consumers)), 60)
        else:
            await asyncio.sleep(0.2)
        self.apps[name] = new
        self.transports[name].app = new
        await asyncio.sleep(0.2)  # requests already inside the old app finish (or fail and are retried)
        await old.state.runtime.stop()  # the gateway's upstream clients close with it
        self.faults[f"restart {name}" + ("" if wait_for_join else " (old leaves while the new joins)")] += 1

    async def kill_consumer(self, rng: random.Random) -> None:
        """Cancel one consumer task mid-whatever (uncommitted offsets are read again) and start it again."""
        candidates = [(name, c) for name in SERVICES for c in self.apps[name].state.runtime.consumers]
        name, consumer = rng.choice(candidates)
        runtime = self.apps[name].state.runtime
        task = next((t for t in runtime._tasks if t.get_name() == f"consumer-{consumer.handler.name}" and not t.done()), None)
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        runtime._tasks.remove(task)
        runtime._tasks.append(asyncio.create_task(consumer.run(), name=f"consumer-{consumer.handler.name}"))
        self.faults[f"kill consumer {consumer.handler.name}"] += 1

    async def pause_broker(self, broker, seconds: float) -> None:
        broker.pause()
        try:
            await asyncio.sleep(seconds)
        finally:
            broker.resume()
        self.faults["broker pause"] += 1

    async def settled(self, extra_s: float, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        consumers = [c for name in SERVICES for c in self.apps[name].state.runtime.consumers]
        while not all(c.started.is_set() for c in consumers) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(extra_s)

    async def stop(self) -> None:
        for app in [*self.apps.values()]:
            try:
                await app.state.runtime.stop()
            except Exception:
                pass
            if hasattr(app.state, "gateway"):
                await app.state.gateway.aclose()

    async def pending_outbox(self) -> dict[str, int]:
        out = {}
        for name in (*SERVICES, "gateway"):
            async with self.db(name).sessions() as session:
                out[name] = int(await session.scalar(select(func.count()).where(outbox_table.c.published_at.is_(None))) or 0)
        return out


# -------------------------------------------------------------------- the generator and its oracle


@dataclass
class Inputs:
    """What the generator sent, and so what every service must end up with."""

    customers: list[str] = field(default_factory=list)
    orders: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # event id -> (customer, amount)
    complaints: dict[str, str] = field(default_factory=dict)  # idempotency key -> customer
    complaint_ids: dict[str, str] = field(default_factory=dict)  # idempotency key -> complaint id
    sends: int = 0  # HTTP requests carrying events (retries and deliberate re-sends included)
    events_posted: int = 0  # events in those requests
    gateway_duplicates: int = 0  # events the gateway answered "duplicate" (a re-send)
    complaint_replays: int = 0  # complaints answered from the idempotency key (a re-send)
    retries: int = 0  # requests retried after a 5xx or a transport error

    def orders_by_customer(self) -> dict[str, tuple[int, Decimal]]:
        out: dict[str, list] = defaultdict(lambda: [0, Decimal("0")])
        for customer, amount in self.orders.values():
            out[customer][0] += 1
            out[customer][1] += amount
        return {c: (n, total) for c, (n, total) in out.items()}

    def complaints_by_customer(self) -> Counter:
        return Counter(self.complaints.values())


async def _send(client: httpx.AsyncClient, inputs: Inputs, method: str, path: str, *, json: Any, headers: dict, attempts: int = 30):
    """A client that retries with the same body (the same event ids, the same idempotency key)."""
    for attempt in range(attempts):
        try:
            response = await client.request(method, path, json=json, headers=headers)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code < 500:
            return response
        inputs.retries += 1
        await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
    raise AssertionError(
        f"{method} {path} still failing after {attempts} attempts: {response and response.status_code} {response and response.text[:300]}"
    )


async def register_customers(platform: Platform, inputs: Inputs, count: int, rng: random.Random) -> None:
    admin = platform.headers("admin")
    async with platform.client() as client:
        for i in range(count):
            phone = f"+86139{rng.randrange(10**8):08d}"
            response = await _send(
                client,
                inputs,
                "POST",
                "/api/v1/customers",
                headers=admin,
                json={
                    "name": f"E2E Shipper {i} {uuid.uuid4().hex[:6]}",
                    "status": "active",
                    "industry": "retail",
                    "contacts": [{"name": f"Contact {i}", "phone": phone, "email": f"c{i}.{uuid.uuid4().hex[:6]}@e2e.example"}],
                },
            )
            assert response.status_code == 201, response.text
            inputs.customers.append(response.json()["id"])


async def send_orders(
    platform: Platform, inputs: Inputs, count: int, rng: random.Random, *, duration_s: float, resend_rate: float = 0.1
) -> None:
    """`count` OrderCreated events in batches of 1-40, spread over about `duration_s`; the first batch
    and about `resend_rate` of the others are sent twice (a client that did not see the answer)."""
    tms = platform.headers("tms")
    now = dt.datetime.now(dt.UTC)
    pause = duration_s / max(1, count / 20.5)
    async with platform.client() as client:
        remaining = count
        first = True
        while remaining:
            size = min(remaining, rng.randint(1, 40))
            batch = []
            for _ in range(size):
                event_id, customer = str(uuid.uuid4()), rng.choice(inputs.customers)
                amount = Decimal(rng.randrange(1000, 500_000)) / 100
                inputs.orders[event_id] = (customer, amount)
                batch.append(
                    {
                        "event_id": event_id,
                        "type": "OrderCreated",
                        "payload": {
                            "order_id": f"O-{event_id[:13]}",
                            "customer_id": customer,
                            "amount": str(amount),
                            "service_type": "express",
                            "order_date": (now - dt.timedelta(days=rng.randint(1, 60), minutes=rng.randint(0, 1440))).isoformat(),
                        },
                    }
                )
            for repeat in range(2 if first or rng.random() < resend_rate else 1):
                response = await _send(client, inputs, "POST", "/api/v1/events", headers=tms, json=batch)
                assert response.status_code == 200, response.text
                result = response.json()
                inputs.sends += 1
                inputs.events_posted += len(batch)
                inputs.gateway_duplicates += result["duplicates"]
                assert result["accepted"] + result["duplicates"] == len(batch) and result["rejected"] == 0, result
                if repeat:
                    assert result["duplicates"] == len(batch), result
            remaining -= size
            first = False
            await asyncio.sleep(rng.uniform(0, 2 * pause))


async def file_complaints(
    platform: Platform, inputs: Inputs, count: int, rng: random.Random, *, duration_s: float, resend_rate: float = 0.1
) -> None:
    """`count` complaints with their own Idempotency-Key, spread over about `duration_s`; the first and
    about `resend_rate` of the others are sent twice with the same key."""
    agent = platform.headers("agent", team="hotline")
    async with platform.client() as client:
        for i in range(count):
            key, customer = f"e2e-{uuid.uuid4()}", rng.choice(inputs.customers)
            inputs.complaints[key] = customer
            body = {
                "customer_id": customer,
                "category": rng.choice(["delay", "damage", "billing"]),
                "channel": "call_center",
                "tracking_numbers": [f"SFE2E{uuid.uuid4().hex[:10].upper()}"],
                "description": f"e2e complaint {i}",
            }
            for repeat in range(2 if i == 0 or rng.random() < resend_rate else 1):
                response = await _send(client, inputs, "POST", "/api/v1/complaints", headers={**agent, "Idempotency-Key": key}, json=body)
                assert response.status_code == 201, response.text
                inputs.sends += 1
                if repeat or response.headers.get("idempotent-replay") == "true":
                    inputs.complaint_replays += 1
                cid = response.json()["id"]
                assert inputs.complaint_ids.setdefault(key, cid) == cid, "a re-sent complaint made a second one"
            await asyncio.sleep(rng.uniform(0, 2 * duration_s / max(1, count)))


async def inject_faults(
    platform: Platform,
    broker,
    rng: random.Random,
    stop: asyncio.Event,
    *,
    pause_s: tuple[float, float],
    every_s: tuple[float, float],
    settle_s: float = 0.0,
    restartable=("scoring", "complaints", "notifications", "gateway"),
) -> None:
    """Random faults until `stop`: broker pause, a consumer killed and restarted, a service restarted.
    After each fault, the next one waits until every consumer has (re)joined its group and `settle_s`
    more (a session timeout): one failure at a time, the way an SLO counts them."""
    kinds = ["pause", "consumer", "restart"] if broker is not None else ["consumer", "restart"]
    if os.environ.get("E2E_FAULTS"):  # e.g. E2E_FAULTS=pause,consumer to look at one kind of fault
        kinds = [k for k in os.environ["E2E_FAULTS"].split(",") if k in kinds]
    i = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(*every_s))
            return
        except TimeoutError:
            pass
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)  # each kind at least once
        i += 1
        if kind == "pause":
            await platform.pause_broker(broker, rng.uniform(*pause_s))
        elif kind == "consumer":
            await platform.kill_consumer(rng)
        else:
            await platform.restart(rng.choice(restartable), wait_for_join=rng.random() < 0.5)
        await platform.settled(settle_s)


# -------------------------------------------------------------------- reading the state back


async def scalar_rows(db, sql: str, **params) -> list[tuple]:
    async with db.sessions() as session:
        return [tuple(r) for r in (await session.execute(text(sql), params)).all()]


async def observed(platform: Platform) -> dict[str, Any]:
    scoring_orders = await scalar_rows(platform.db("scoring"), "SELECT customer_id, COUNT(*), SUM(amount) FROM orders GROUP BY customer_id")
    scoring_complaints = await scalar_rows(platform.db("scoring"), "SELECT customer_id, COUNT(*) FROM complaints GROUP BY customer_id")
    complaints = await scalar_rows(platform.db("complaints"), "SELECT customer_id, COUNT(*) FROM complaints GROUP BY customer_id")
    inbox = {}
    for name in SERVICES:
        inbox[name] = await scalar_rows(platform.db(name), "SELECT consumer, event_type, event_id FROM inbox")
    return {
        "profile_customers": (await scalar_rows(platform.db("profile"), "SELECT COUNT(*) FROM customers"))[0][0],
        "gateway_ingested": {r[0] for r in await scalar_rows(platform.db("gateway"), "SELECT event_id FROM ingested_events")},
        "scoring_orders": {c: (int(n), Decimal(str(round(total, 2)))) for c, n, total in scoring_orders},
        "scoring_complaints": {c: int(n) for c, n in scoring_complaints},
        "complaints": {c: int(n) for c, n in complaints},
        "inbox": inbox,
    }


def compare(inputs: Inputs, seen: dict[str, Any]) -> list[str]:
    """Differences between the oracle (from the inputs alone) and the services' state."""
    problems = []
    expected_orders = {c: (n, total.quantize(Decimal("0.01"))) for c, (n, total) in inputs.orders_by_customer().items()}
    if seen["scoring_orders"] != expected_orders:
        diff = {
            c: (expected_orders.get(c), seen["scoring_orders"].get(c))
            for c in set(expected_orders) | set(seen["scoring_orders"])
            if expected_orders.get(c) != seen["scoring_orders"].get(c)
        }
        problems.append(f"scoring orders per customer (expected, seen): {dict(list(diff.items())[:5])}")
    expected_complaints = dict(inputs.complaints_by_customer())
    if seen["complaints"] != expected_complaints:
        problems.append(f"complaints per customer: expected {expected_complaints}, seen {seen['complaints']}")
    if seen["scoring_complaints"] != expected_complaints:
        problems.append(f"scoring's complaint facts per customer: expected {expected_complaints}, seen {seen['scoring_complaints']}")
    if seen["profile_customers"] != len(inputs.customers):
        problems.append(f"profile customers: expected {len(inputs.customers)}, seen {seen['profile_customers']}")
    if seen["gateway_ingested"] != set(inputs.orders):
        problems.append(f"gateway ingested {len(seen['gateway_ingested'])} ids, sent {len(inputs.orders)}")
    scoring_ids = {eid for consumer, kind, eid in seen["inbox"]["scoring"] if kind == "OrderCreated"}
    lost = set(inputs.orders) - scoring_ids
    if lost:
        problems.append(f"{len(lost)} logistics events lost before scoring")
    filed = Counter(kind for consumer, kind, _ in seen["inbox"]["notifications"] if kind == "ComplaintFiled")
    if filed["ComplaintFiled"] != len(inputs.complaints):
        problems.append(f"notifications consumed {filed['ComplaintFiled']} ComplaintFiled, expected {len(inputs.complaints)}")
    registered = {
        consumer: n
        for (consumer, kind), n in Counter((c, k) for name in SERVICES for c, k, _ in seen["inbox"][name]).items()
        if kind == "CustomerRegistered"
    }
    for consumer in ("scoring", "complaints-customer-directory", "notifications"):
        if registered.get(consumer) != len(inputs.customers):
            problems.append(f"{consumer} consumed {registered.get(consumer)} CustomerRegistered, expected {len(inputs.customers)}")
    return problems


def duplicates_absorbed_by_inboxes() -> int:
    total = 0
    for metric in EVENTS_CONSUMED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("outcome") == "duplicate":
                total += int(sample.value)
    return total


def report(inputs: Inputs, seen: dict[str, Any], platform: Platform, inbox_duplicates: int, elapsed_s: float) -> str:
    applied = len({eid for _, kind, eid in seen["inbox"]["scoring"] if kind == "OrderCreated"} & set(inputs.orders))
    lost = len(set(inputs.orders) - {eid for _, kind, eid in seen["inbox"]["scoring"] if kind == "OrderCreated"})
    lines = [
        f"acceptance run: {elapsed_s:.1f} s, faults {dict(platform.faults)}",
        f"  events sent: {len(inputs.orders)} logistics events (unique) + {len(inputs.complaints)} complaints, "
        f"in {inputs.sends} requests carrying {inputs.events_posted} events; {inputs.retries} retries after 5xx/transport errors",
        f"  applied: {applied} logistics events in scoring, {sum(seen['complaints'].values())} complaints, "
        f"{sum(n for n, _ in seen['scoring_orders'].values())} orders in scoring's facts",
        f"  duplicates absorbed: {inputs.gateway_duplicates} by the gateway (re-sent events), {inputs.complaint_replays} complaint "
        f"re-sends answered from the idempotency key, {inbox_duplicates} redeliveries by the consumers' inboxes",
        f"  lost (accepted but not applied at the end): {lost}",
    ]
    return "\n".join(lines)


async def wait_for_oracle(platform: Platform, inputs: Inputs, timeout_s: float) -> tuple[dict[str, Any], list[str]]:
    deadline = time.monotonic() + timeout_s
    while True:
        seen = await observed(platform)
        problems = compare(inputs, seen)
        pending = await platform.pending_outbox()
        if not problems and not any(pending.values()):
            return seen, []
        if time.monotonic() > deadline:
            return seen, problems + [f"outbox still pending: {pending}"] if any(pending.values()) else problems
        await asyncio.sleep(0.5)


async def diagnostics(platform: Platform) -> str:
    """When the oracle is not met: each consumer task's state, the groups' committed offsets and the topics' ends."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    lines = []
    for name in SERVICES:
        runtime = platform.apps[name].state.runtime
        for task in runtime._tasks:
            state = "running" if not task.done() else f"done ({task.exception()!r})" if not task.cancelled() else "cancelled"
            lines.append(f"{name} task {task.get_name()}: {state}")
    for name in (*SERVICES, "gateway"):
        if platform.db(name).dialect == "postgresql":
            rows = await scalar_rows(
                platform.db(name),
                "SELECT state, wait_event_type, wait_event, now() - xact_start, left(query, 120) "
                "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            for row in rows:
                if row[0] != "idle":
                    lines.append(f"{name} db session: {row}")
    kafka = platform.kafka
    for name in SERVICES:
        for consumer in platform.apps[name].state.runtime.consumers:
            reader = AIOKafkaConsumer(**kafka.client_options(), group_id=consumer.group_id, enable_auto_commit=False)
            await reader.start()
            try:
                for topic in consumer.handler.topics:
                    physical = kafka.physical(topic)
                    partitions = [TopicPartition(physical, p) for p in sorted(reader.partitions_for_topic(physical) or [])]
                    ends = await reader.end_offsets(partitions) if partitions else {}
                    for tp in partitions:
                        committed = await reader.committed(tp)
                        if committed != ends.get(tp):
                            lines.append(f"group {consumer.group_id} {topic}[{tp.partition}]: committed {committed}, end {ends.get(tp)}")
            except Exception as exc:  # diagnostics only
                lines.append(f"group {consumer.group_id}: {exc!r}")
            finally:
                await reader.stop()
    return "\n".join(lines)
