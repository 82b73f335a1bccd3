"""Benchmarks of the complaints service; prints figures, asserts nothing.

    .venv/bin/python services/complaints/bench/bench_complaints.py [--complaints 400] [--postgres URL]

1. business-hours arithmetic (add_business_minutes, business_minutes_between) on a Shanghai calendar
   with a lunch break and a holiday week, cold and warm interval cache;
2. filing complaints through the service layer on PostgreSQL (routing, priority, clocks, outbox);
3. SLA scheduler: one scan escalating every due clock, one replica and then two racing replicas.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from complaints_support import ALL_WEEK, complaint_body, seed_customer, seed_team  # noqa: E402
from crm_common.db import Database  # noqa: E402
from crm_common.migrations import upgrade  # noqa: E402
from crm_complaints import ALEMBIC_INI  # noqa: E402
from crm_complaints.complaints import intake  # noqa: E402
from crm_complaints.complaints.scheduler import SlaScheduler  # noqa: E402
from crm_complaints.complaints.schemas import ComplaintCreate  # noqa: E402
from crm_complaints.complaints.sla import BusinessCalendar, _intervals_on  # noqa: E402
from crm_complaints.settings import ComplaintsSettings  # noqa: E402

UTC = dt.UTC
CALENDAR = {
    "timezone": "Asia/Shanghai",
    "periods": [["09:00", "12:00"], ["13:00", "18:00"]],
    "holidays": [f"2026-10-0{d}" for d in range(1, 8)],
    "workdays": ["2026-09-27", "2026-10-10"],
}


def bench_arithmetic(n: int = 20000) -> None:
    calendar = BusinessCalendar.from_dict(CALENDAR)
    rng = random.Random(1)
    starts = [dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=rng.randint(0, 365 * 1440)) for _ in range(n)]
    targets = [rng.choice([30, 60, 240, 480, 960, 2400]) for _ in range(n)]
    for label in ("cold cache", "warm cache"):
        if label == "cold cache":
            _intervals_on.cache_clear()
        t0 = time.perf_counter()
        deadlines = [calendar.add_business_minutes(s, m) for s, m in zip(starts, targets)]
        t1 = time.perf_counter()
        for s, d in zip(starts, deadlines):
            calendar.business_minutes_between(s, d)
        t2 = time.perf_counter()
        print(f"sla arithmetic ({label}): add_business_minutes {n / (t1 - t0):,.0f}/s, business_minutes_between {n / (t2 - t1):,.0f}/s")


async def fresh_database(admin_url: str) -> tuple[str, str]:
    name = f"bench_complaints_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin_url)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return name, admin_url.rsplit("/", 1)[0] + "/" + name


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await connection.close()


async def bench_storage(admin_url: str, count: int) -> None:
    name, url = await fresh_database(admin_url)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        db = Database(url)
        settings = ComplaintsSettings(database_url=url)
        await seed_customer(db, "cust-1")
        await seed_team(db, "transport", {f"t{i}": ALL_WEEK for i in range(10)}, calendar=CALENDAR)
        filed_at = dt.datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
        latencies = []
        t0 = time.perf_counter()
        for i in range(count):
            start = time.perf_counter()
            async with db.transaction() as session:
                await intake.file_complaint(
                    session,
                    ComplaintCreate(**complaint_body(order_ids=[f"o{i}"], tracking_numbers=[f"t{i}"])),
                    settings=settings,
                    now=filed_at + dt.timedelta(minutes=i),
                )
            latencies.append((time.perf_counter() - start) * 1000)
        elapsed = time.perf_counter() - t0
        latencies.sort()
        print(
            f"filing on PostgreSQL: {count / elapsed:,.0f} complaints/s sequential; latency p50 {statistics.median(latencies):.1f} ms, "
            f"p95 {latencies[int(0.95 * len(latencies)) - 1]:.1f} ms"
        )

        far = filed_at + dt.timedelta(days=90)
        replicas = [Database(url), Database(url)]
        try:
            t0 = time.perf_counter()
            one = SlaScheduler(replicas[0], settings)
            emitted = 0
            while True:  # batches of scheduler_batch_size
                done = await one.scan_once(far)
                emitted += done
                if not done:
                    break
            print(
                f"scheduler, one replica: {emitted} escalations ({count} complaints x 2 clocks x 3 levels) "
                f"in {time.perf_counter() - t0:.2f} s"
            )
        finally:
            for r in replicas:
                await r.dispose()
        await db.dispose()
    finally:
        await drop_database(admin_url, name)

    name, url = await fresh_database(admin_url)
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        db = Database(url)
        settings = ComplaintsSettings(database_url=url)
        await seed_customer(db, "cust-1")
        await seed_team(db, "transport", {"t1": ALL_WEEK}, calendar=CALENDAR)
        for i in range(count):
            async with db.transaction() as session:
                await intake.file_complaint(
                    session, ComplaintCreate(**complaint_body(order_ids=[f"o{i}"])), settings=settings, now=filed_at
                )
        replicas = [Database(url), Database(url)]
        try:
            schedulers = [SlaScheduler(r, settings) for r in replicas]
            t0 = time.perf_counter()
            totals = [0, 0]
            while True:
                results = await asyncio.gather(*(s.scan_once(far) for s in schedulers))
                totals = [a + b for a, b in zip(totals, results)]
                if not any(results):
                    break
            print(
                f"scheduler, two racing replicas: {sum(totals)} escalations (split {totals}, lost races "
                f"{[s.lost_races for s in schedulers]}) in {time.perf_counter() - t0:.2f} s"
            )
        finally:
            for r in replicas:
                await r.dispose()
        await db.dispose()
    finally:
        await drop_database(admin_url, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--complaints", type=int, default=400)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    bench_arithmetic()
    asyncio.run(bench_storage(args.postgres, args.complaints))


if __name__ == "__main__":
    main()
