"""Scale-out on one machine: 1, 2, 3 replicas of a consumer service in ONE consumer group.

For each replica count: a private Tansu broker (crm_devbroker.broker.LocalBroker), a fresh topic set
with 6 partitions (its own KAFKA_TOPIC_PREFIX, so each run's group starts from offset 0), a fresh
PostgreSQL database migrated to head, R worker processes (`python -m <worker module>` wrapped by
tests/scaleout/scaleout_probe.py, which records the partitions aiokafka assigns to each process),
then the same event stream (keyed by many customer ids) is published and consumed. Checked: every
partition of every subscribed topic belongs to exactly one replica, every replica owns some, no
event went to the dead-letter topic, and the state fingerprint (computed from the service's own
tables) equals the 1-replica run. Printed: throughput per replica count.

    .venv/bin/python bench/scaleout.py                         # every available target, 20k events
    .venv/bin/python bench/scaleout.py --target scoring --events 50000 --customers 5000

Targets: `recorder` (tests/scaleout/scaleout_worker.py, crm_common only) and each real service
worker that exists (`scoring`: crm_scoring.worker). Needs PostgreSQL (TEST_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/postgres). Throughput on a 2-core machine is bounded by the
CPU shared by broker, database and replicas: the figures show scaling, not capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import importlib
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCALEOUT_TESTS = REPO / "tests" / "scaleout"  # the recorder worker, the assignment probe, per-service fingerprints
if str(SCALEOUT_TESTS) not in sys.path:
    sys.path.insert(0, str(SCALEOUT_TESTS))

import asyncpg  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from sqlalchemy import text  # noqa: E402

from crm_common.bus import ensure_topics  # noqa: E402
from crm_common.db import Database  # noqa: E402
from crm_common.events.envelope import EventEnvelope, encode_envelope, make_event  # noqa: E402
from crm_common.events.logistics import (  # noqa: E402
    OrderCreated,
    OrderDelivered,
    OrderShipped,
    PaymentReceived,
    ShipmentDamaged,
    ShipmentDelayed,
    ShipmentLost,
)
from crm_common.events.topics import ALL_TOPICS, topic_for  # noqa: E402
from crm_common.settings import KafkaSettings  # noqa: E402
from crm_devbroker.broker import LocalBroker  # noqa: E402

PARTITIONS = 6
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


# --------------------------------------------------------------------------- the event stream
def make_stream(events: int, customers: int, seed: int = 7) -> list[EventEnvelope]:
    """A deterministic order-to-cash stream: per customer, orders are created, shipped, delivered
    and paid in that order, some shipments get delayed, damaged or lost on the way; customers are
    drawn with a skew (a few big shippers, many small ones)."""
    rng = random.Random(seed)
    ids = [f"C{index:06d}" for index in range(customers)]
    weights = [1.0 / (rank + 1) ** 0.7 for rank in range(customers)]
    clock = {c: dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i) for i, c in enumerate(ids)}
    pipeline: dict[str, list[list]] = defaultdict(list)  # customer -> [[order_id, stage, amount, due]]
    out: list[EventEnvelope] = []
    counter = 0
    while len(out) < events:
        customer = rng.choices(ids, weights)[0]
        clock[customer] += dt.timedelta(hours=rng.randint(1, 48))
        now = clock[customer]
        open_orders = pipeline[customer]
        if open_orders and rng.random() < 0.6:
            order = open_orders[0]
            order_id, stage, amount = order[0], order[1], order[2]
            if stage == "created":
                payload = OrderShipped(order_id=order_id, customer_id=customer, shipped_at=now)
                order[1] = "shipped"
            elif stage == "shipped" and rng.random() < 0.15:
                # a TMS incident on the way: delays (some below the complaint threshold), damage, loss
                incident = rng.random()
                if incident < 0.6:
                    payload = ShipmentDelayed(
                        order_id=order_id,
                        customer_id=customer,
                        delay_minutes=rng.choice([90, 600, 1500, 2900]),
                        reason="weather",
                        reported_at=now,
                    )
                elif incident < 0.9:
                    payload = ShipmentDamaged(
                        order_id=order_id,
                        customer_id=customer,
                        description="crushed carton",
                        estimated_loss=(amount / 4).quantize(Decimal("0.01")),
                        reported_at=now,
                    )
                else:
                    payload = ShipmentLost(order_id=order_id, customer_id=customer, declared_value=amount, reported_at=now)
                    open_orders.pop(0)
            elif stage == "shipped":
                promised = now + dt.timedelta(hours=rng.choice([-12, 6, 24]))
                payload = OrderDelivered(order_id=order_id, customer_id=customer, delivered_at=now, promised_at=promised)
                order[1] = "delivered"
            else:
                payload = PaymentReceived(
                    invoice_id=f"INV-{order_id}",
                    customer_id=customer,
                    amount=amount,
                    due_date=(now + dt.timedelta(days=30)).date(),
                    paid_at=now,
                )
                open_orders.pop(0)
        else:
            counter += 1
            order_id = f"O{counter:08d}"
            amount = Decimal(rng.randint(200, 200_000)) / 100
            payload = OrderCreated(
                order_id=order_id,
                customer_id=customer,
                order_date=now,
                amount=amount,
                cost=(amount * Decimal("0.8")).quantize(Decimal("0.01")),
                service_type=rng.choice(["warehousing", "trunk", "distribution", "express", "cold_chain"]),
                lane=rng.choice(["SHA-PEK", "SZX-CTU", "CAN-WUH", "NKG-XIY"]),
            )
            open_orders.append([order_id, "created", amount])
        out.append(
            make_event(
                payload,
                key=customer,
                producer="scaleout-bench",
                occurred_at=now,
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            )
        )
    return out


def make_directory(customers: int, seed: int = 7) -> list[EventEnvelope]:
    """CustomerRegistered for every customer of the stream, published (and applied) before it: the
    customer directory that complaints, notifications and scoring keep from crm.customers."""
    from crm_common.events.customers import ContactSnapshot, CustomerRegistered

    rng = random.Random(seed * 7919)
    out = []
    for index in range(customers):
        customer = f"C{index:06d}"
        contact = ContactSnapshot(
            contact_id=f"{customer}-1",
            name=f"Contact {index}",
            role="logistics manager",
            phone=f"+86138{index:08d}",
            email=f"ops{index}@shipper{index}.example.cn",
            preferred_channel=rng.choice(["email", "sms"]),
            language=rng.choice(["zh-CN", "en"]),
        )
        payload = CustomerRegistered(
            customer_id=customer,
            name=f"Shipper {index} Co., Ltd.",
            region=rng.choice(["East", "North", "South", "West"]),
            status="active",
            account_manager=f"am-{index % 7}",
            service_types=["trunk", "warehousing"],
            credit_limit=float(rng.choice([50_000, 200_000, 1_000_000])),
            payment_days=rng.choice([30, 45, 60]),
            contacts=[contact],
        )
        out.append(
            make_event(
                payload,
                key=customer,
                producer="scaleout-bench",
                occurred_at=dt.datetime(2025, 12, 1, tzinfo=dt.UTC),
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            )
        )
    return out


# --------------------------------------------------------------------------- targets
@dataclass
class Target:
    name: str
    module: str  # python -m <module>
    env_prefix: str
    pythonpath: list[Path]
    prepare: Callable[[str], Awaitable[None]]  # create the schema in a fresh database
    fingerprint: Callable[[str], Awaitable[dict]]  # {"digest": ..., ...summary}
    accepts: Callable[[EventEnvelope], bool] = lambda envelope: True  # lands in the inbox of some handler
    extra_env: dict[str, str] = field(default_factory=dict)


async def _rows(url: str, sql: str) -> list[tuple]:
    db = Database(url)
    try:
        async with db.engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(text(sql))).all()]
    finally:
        await db.dispose()


def _digest(rows) -> str:
    hasher = hashlib.sha256()
    for row in rows:
        hasher.update(repr(tuple(str(v) for v in row)).encode())
    return hasher.hexdigest()


def recorder_target() -> Target:
    import scaleout_worker

    async def fingerprint(url: str) -> dict:
        rows = await _rows(
            url, "SELECT customer_id, topic, events, amount, chain FROM scaleout_customer_topic_totals ORDER BY customer_id, topic"
        )
        return {"digest": _digest(rows), "rows": len(rows), "events": sum(r[2] for r in rows)}

    return Target(
        name="recorder",
        module="scaleout_worker",
        env_prefix="SCALEOUT_",
        pythonpath=[SCALEOUT_TESTS],
        prepare=scaleout_worker.create_schema,
        fingerprint=fingerprint,
        accepts=lambda envelope: topic_for(envelope.type) in scaleout_worker.Recorder.topics,
    )


def service_folder(package: str) -> Path | None:
    for folder in (REPO / "services").iterdir():
        if (folder / package / "__init__.py").exists():
            return folder
    return None


def alembic_prepare(folder: Path, package: str) -> Callable[[str], Awaitable[None]]:
    async def prepare(url: str) -> None:
        from crm_common.migrations import upgrade

        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        await asyncio.to_thread(upgrade, folder / "alembic.ini", url)

    return prepare


def service_target(name: str, package: str, env_prefix: str, support_module: str) -> Target | None:
    """A real service worker; `support_module` (tests/scaleout/scaleout_<name>.py) says which events
    it applies (from its handlers) and how to fingerprint its state from its own tables."""
    folder = service_folder(package)
    if folder is None or not (folder / package / "worker.py").exists() or not (folder / "alembic.ini").exists():
        return None
    if importlib.util.find_spec(package) is None:
        sys.path.insert(0, str(folder))
    support = importlib.import_module(support_module)
    return Target(
        name=name,
        module=f"{package}.worker",
        env_prefix=env_prefix,
        pythonpath=[folder],
        prepare=alembic_prepare(folder, package),
        fingerprint=lambda url: support.fingerprint(url, _rows, _digest),
        accepts=support.accepts,
        extra_env=support.EXTRA_ENV,
    )


def scoring_target() -> Target | None:
    return service_target("scoring", "crm_scoring", "SCORING_", "scaleout_scoring")


def complaints_target() -> Target | None:
    return service_target("complaints", "crm_complaints", "COMPLAINTS_", "scaleout_complaints")


def notifications_target() -> Target | None:
    return service_target("notifications", "crm_notifications", "NOTIFICATIONS_", "scaleout_notifications")


def available_targets() -> dict[str, Target]:
    targets = {"recorder": recorder_target()}
    for make in (scoring_target, complaints_target, notifications_target):
        target = make()
        if target is not None:
            targets[target.name] = target
    return targets


# --------------------------------------------------------------------------- one run
@dataclass
class RunResult:
    target: str
    replicas: int
    events: int
    seconds: float
    assignment: dict[str, dict[int, list[tuple[str, int]]]]  # group -> pid -> partitions
    fingerprint: dict
    dead_letters: int
    inbox_rows: int
    join_seconds: float = 0.0
    rebalances_during_run: int = 0
    events_per_replica: list[int] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    def load(self) -> str:
        return "/".join(str(n) for n in self.events_per_replica)

    def split(self) -> str:
        parts = []
        for _group, owners in sorted(self.assignment.items()):
            counts = sorted((len(p) for p in owners.values()), reverse=True)
            parts.append("+".join(str(c) for c in counts))
        return " ".join(sorted(set(parts)))


def postgres_admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES)


async def create_database(name: str) -> str:
    admin = postgres_admin_url()
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return admin.rpartition("/")[0] + "/" + name


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(postgres_admin_url())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def read_assignments(path: Path) -> dict[str, dict[int, list[tuple[str, int]]]]:
    """Latest assignment per (group, pid)."""
    latest: dict[str, dict[int, list[tuple[str, int]]]] = defaultdict(dict)
    if not path.exists():
        return {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        latest[record["group"]][record["pid"]] = [tuple(p) for p in record["partitions"]]
    return dict(latest)


def events_per_replica(stream: list[EventEnvelope], kafka: KafkaSettings, assignment: dict, pids: list[int], target: Target) -> list[int]:
    """Events each replica had to apply: the partition of an event is the producer's murmur2(key) % partitions."""
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = DefaultPartitioner()
    everything = list(range(PARTITIONS))
    owner: dict[tuple[str, int], int] = {}
    for owners in assignment.values():
        for pid, owned in owners.items():
            for tp in owned:
                owner.setdefault(tuple(tp), pid)
    counts = {pid: 0 for pid in pids}
    for envelope in stream:
        if not target.accepts(envelope):
            continue
        tp = (kafka.physical(topic_for(envelope.type)), partitioner(envelope.key.encode(), everything, everything))
        if tp in owner and owner[tp] in counts:
            counts[owner[tp]] += 1
    return sorted(counts.values(), reverse=True)


def assignments_after(path: Path, moment: float) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip() and json.loads(line)["at"] > moment)


def split_problems(assignment: dict, pids: list[int], partitions: int) -> list[str]:
    """Empty when, in every group, each replica owns >= 1 partition and each partition has one owner."""
    problems = []
    if not assignment:
        return ["no assignment recorded yet"]
    for group, owners in assignment.items():
        missing = [pid for pid in pids if not owners.get(pid)]
        if missing:
            problems.append(f"{group}: replicas {missing} own no partition")
        seen: dict[tuple[str, int], int] = {}
        for pid, owned in owners.items():
            if pid not in pids:
                continue
            for tp in owned:
                if tp in seen:
                    problems.append(f"{group}: {tp} owned by {seen[tp]} and {pid}")
                seen[tp] = pid
        for topic in {tp[0] for tp in seen}:
            have = {tp[1] for tp in seen if tp[0] == topic}
            if have != set(range(partitions)):
                problems.append(f"{group}: {topic} partitions {sorted(set(range(partitions)) - have)} unowned")
    return problems


async def group_members(bootstrap: str, groups: list[str]) -> dict[str, tuple[str, int]]:
    """{group: (state, member count)} from the broker's DescribeGroups (Tansu lists a group only
    after its first commit, so the names come from the recorded assignments)."""
    if not groups:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    out = {}
    try:
        for name in sorted(groups):  # one group per request: Tansu garbles multi-group answers
            for response in await admin.describe_consumer_groups([name]):
                for group in response.groups:
                    _error, group_name, state, _ptype, _protocol, members = group[:6]
                    out[group_name] = (state, len(members))
    finally:
        await admin.close()
    return out


async def inbox_progress(url: str) -> tuple[int, int, int, dt.datetime | None]:
    """(inbox rows, distinct events, dead letters, last processed_at)."""
    rows = await _rows(
        url,
        "SELECT count(*), count(DISTINCT event_id), coalesce(sum(CASE WHEN outcome = 'dead_letter' THEN 1 ELSE 0 END), 0), "
        "max(processed_at) FROM inbox",
    )
    count, distinct, dead, last = rows[0]
    if isinstance(last, str):
        last = dt.datetime.fromisoformat(last)
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    return int(count), int(distinct), int(dead or 0), last


async def publish(bootstrap: str, kafka: KafkaSettings, stream: list[EventEnvelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(kafka.physical(topic_for(e.type)), encode_envelope(e), key=e.key.encode()) for e in stream]
        await producer.flush()
        for future in futures:
            await future
    finally:
        await producer.stop()


def start_workers(target: Target, replicas: int, env: dict[str, str], log_dir: Path) -> list[subprocess.Popen]:
    processes = []
    for index in range(replicas):
        log = open(log_dir / f"{target.name}-r{replicas}-{index}.log", "wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "scaleout_probe", target.module],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=REPO,
            )
        )
        log.close()
    return processes


def stop_workers(processes: list[subprocess.Popen], timeout_s: float = 15) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def run_once(
    target: Target,
    replicas: int,
    stream: list[EventEnvelope],
    broker: LocalBroker,
    log_dir: Path,
    directory: list[EventEnvelope] = (),
    *,
    settle_s: float = 1.0,
    timeout_s: float = 600,
    stall_s: float = 45,
    join_timeout_s: float = 60,
) -> RunResult:
    token = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_prefix=f"so{token}.")
    await ensure_topics(kafka, ALL_TOPICS, PARTITIONS)
    db_name = f"crm_scaleout_{target.name}_{token}"
    url = await create_database(db_name)
    assignments_file = log_dir / f"{target.name}-r{replicas}-{token}.assignments.jsonl"
    processes: list[subprocess.Popen] = []
    try:
        await target.prepare(url)
        env = dict(os.environ)
        env.update(target.extra_env)
        env.update(
            {
                f"{target.env_prefix}DATABASE_URL": url,
                f"{target.env_prefix}LOG_LEVEL": "WARNING",
                f"{target.env_prefix}WORKER_HTTP_PORT": "0",  # several replicas on one host: no /metrics port each
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                "KAFKA_DEV_BROKER": "tansu",
                "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
                "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
                "CRM_SCALEOUT_ASSIGNMENTS": str(assignments_file),
                "PYTHONPATH": os.pathsep.join([str(p) for p in target.pythonpath] + [str(SCALEOUT_TESTS), env.get("PYTHONPATH", "")]),
            }
        )
        spawned = time.monotonic()
        processes = start_workers(target, replicas, env, log_dir)
        pids = [p.pid for p in processes]

        # wait until every group has all replicas as members and the partitions are split among them
        deadline = time.monotonic() + join_timeout_s
        while True:
            dead = [p for p in processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"worker exited with {dead[0].returncode}; see {log_dir}")
            assignment = read_assignments(assignments_file)
            members = await group_members(broker.bootstrap, list(assignment))
            ready = (
                assignment
                and not split_problems(assignment, pids, PARTITIONS)
                and all(members.get(group, ("", 0)) == ("Stable", replicas) for group in assignment)
            )
            if ready:
                join_seconds = time.monotonic() - spawned
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{replicas} replicas did not settle: {split_problems(assignment, pids, PARTITIONS)} {members}")
            await asyncio.sleep(0.2)

        async def wait_applied(expected: int) -> tuple[int, int, int, dt.datetime | None]:
            deadline = time.monotonic() + timeout_s
            last_change, last_seen = time.monotonic(), None
            while True:
                progress = await inbox_progress(url)
                if progress != last_seen:
                    last_seen, last_change = progress, time.monotonic()
                _count, distinct, dead_letters, _last_at = progress
                if distinct >= expected and time.monotonic() - last_change >= settle_s:
                    return progress
                if any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"a worker died during the run; see {log_dir}")
                if time.monotonic() > deadline or time.monotonic() - last_change > stall_s:
                    raise TimeoutError(
                        f"only {distinct}/{expected} events applied ({dead_letters} dead letters); "
                        f"no progress for {time.monotonic() - last_change:.0f}s; see {log_dir}"
                    )
                await asyncio.sleep(0.2)

        # phase 1: the customer directory (not timed); phase 2: the business stream (timed)
        expected_directory = sum(1 for e in directory if target.accepts(e))
        await publish(broker.bootstrap, kafka, directory)
        await wait_applied(expected_directory)
        expected = expected_directory + sum(1 for e in stream if target.accepts(e))
        started = dt.datetime.now(dt.UTC)
        started_epoch = time.time()
        await publish(broker.bootstrap, kafka, stream)
        count, distinct, dead_letters, last_at = await wait_applied(expected)
        final_assignment = read_assignments(assignments_file)
        problems = split_problems(final_assignment, pids, PARTITIONS)
        if problems:
            raise AssertionError(f"partitions not split between the {replicas} replicas: {problems}")
        rebalances = assignments_after(assignments_file, started_epoch)
        load = events_per_replica(stream, kafka, final_assignment, pids, target)
        stop_workers(processes)
        fingerprint = await target.fingerprint(url)
    finally:
        stop_workers(processes)
        await drop_database(db_name)
    seconds = (last_at - started).total_seconds()
    return RunResult(
        target.name,
        replicas,
        len(stream),
        seconds,
        final_assignment,
        fingerprint,
        dead_letters,
        count,
        rebalances_during_run=rebalances,
        events_per_replica=load,
        join_seconds=join_seconds,
    )


async def run_scaleout(
    target: Target,
    replica_counts=(1, 2, 3),
    *,
    events: int,
    customers: int,
    log_dir: Path,
    seed: int = 7,
    progress: Callable[[str], None] = lambda line: None,
) -> list[RunResult]:
    log_dir.mkdir(parents=True, exist_ok=True)
    stream = make_stream(events, customers, seed)
    directory = make_directory(customers, seed)
    results = []
    for replicas in replica_counts:
        # a fresh broker per run: no group state (members, generations, offsets) carried over
        with LocalBroker(log_path=log_dir / f"tansu-{target.name}-r{replicas}.log") as broker:
            result = await run_once(target, replicas, stream, broker, log_dir, directory)
        progress(f"  {target.name}: {replicas} replica(s): group settled in {result.join_seconds:.1f}s, {result.throughput:,.0f} events/s")
        results.append(result)
    return results


def table(results: list[RunResult]) -> str:
    base = results[0]
    lines = [
        f"{'target':10s} {'replicas':>8s} {'partitions/replica':>18s} {'applied/replica':>18s} {'events':>7s} {'seconds':>8s} "
        f"{'events/s':>9s} {'speed-up':>8s} {'rebal.':>6s} {'dlq':>4s}  state",
    ]
    for r in results:
        same = "= 1-replica" if r.fingerprint == base.fingerprint else "DIFFERS"
        lines.append(
            f"{r.target:10s} {r.replicas:8d} {r.split():>18s} {r.load():>18s} {r.events:7d} {r.seconds:8.2f} {r.throughput:9.0f} "
            f"{r.throughput / base.throughput:8.2f} {r.rebalances_during_run:6d} {r.dead_letters:4d}  {r.fingerprint['digest'][:12]} {same}"
        )
    summary = {k: v for k, v in base.fingerprint.items() if k != "digest"}
    lines.append(
        f"events = the whole stream read by the group; applied = events this service's handlers take "
        f"({sum(base.events_per_replica)}); partitions/replica per consumer group"
    )
    lines.append(f"state of the 1-replica run: {summary}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run 1, 2, 3 replicas of consumer services in one group; print throughput.")
    parser.add_argument("--target", action="append", help="recorder, scoring... (default: every available one)")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the whole 1..N sequence this many times (figures vary on a shared machine)"
    )
    parser.add_argument("--log-dir", type=Path, default=REPO / "bench" / "results" / "scaleout")
    args = parser.parse_args(argv)

    def _terminate(*_):  # let the finally blocks stop the workers and drop the databases
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    if max(args.replicas) > PARTITIONS:
        parser.error(f"more replicas than the {PARTITIONS} partitions would leave some idle")
    targets = available_targets()
    chosen = args.target or list(targets)
    unknown = [t for t in chosen if t not in targets]
    if unknown:
        parser.error(f"unavailable target(s) {unknown}; available: {sorted(targets)}")
    print(
        f"scale-out: {args.events} events, {args.customers} customers, {PARTITIONS} partitions, replicas {args.replicas}, "
        f"{os.cpu_count()} CPUs; logs in {args.log_dir}",
        flush=True,
    )
    failed = False
    for name in chosen:
        results = []
        for round_ in range(args.repeat):
            if args.repeat > 1:
                print(f"round {round_ + 1}/{args.repeat}", flush=True)
            results += asyncio.run(
                run_scaleout(
                    targets[name],
                    args.replicas,
                    events=args.events,
                    customers=args.customers,
                    log_dir=args.log_dir,
                    seed=args.seed,
                    progress=lambda line: print(line, flush=True),
                )
            )
        print(table(results), flush=True)
        if args.repeat > 1:
            for replicas in args.replicas:
                figures = sorted(r.throughput for r in results if r.replicas == replicas)
                print(
                    f"{name}: {replicas} replica(s): median {figures[len(figures) // 2]:,.0f} events/s over {len(figures)} runs "
                    f"(min {figures[0]:,.0f}, max {figures[-1]:,.0f})",
                    flush=True,
                )
        if any(r.fingerprint != results[0].fingerprint or r.dead_letters for r in results):
            failed = True
            print(f"!! {name}: final state differs between replica counts or events were dead-lettered", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
