"""Service levels at scale: the monthly computation (POST /admin/service-levels/compute) and the report's p99.

    python bench/service_levels_bench.py                 # 100,000 customers, 5,000,000 orders over 2 years (PostgreSQL)
    python bench/service_levels_bench.py --quick         # 2,000 customers, 50,000 orders: shows that it works
    python bench/service_levels_bench.py --sqlite        # on a SQLite file instead of PostgreSQL

Orders come from bench/scoring_data.py (heavy-tailed sizes) with service-level facts drawn around their order
day (promises, a 10% late pickup, 8% late delivery, short shipments, 5% urgent, proof-of-delivery returns),
bulk-inserted into a migrated scoring database. Measured for the last full month of the history:

* `compute_month`: the whole base's records of the month, in one transaction (wall and process CPU seconds);
* baseline, same run, same month: one `SELECT customer_id, count(*) ... GROUP BY customer_id` over the
  month's orders, the least any computation of a per-customer monthly record has to read;
* the report (`service_level_report`, worst 20 and a 12-month trend) and its CSV: `--repeat` runs each,
  median and p99.
Results go to bench/results/service_levels.json. On the shared 2-core machine wall times include the others' work.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scoring_data import generate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "service_levels.json"
UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
CHUNK = 20_000


def order_rows(h, seed: int):
    """The orders with service-level facts, as rows of the scoring `orders` table (a generator, CHUNK at a time)."""
    rng = np.random.default_rng(seed)
    n = h.customer.size
    ids = h.customer_ids()
    start_s = (h.order_day.astype(np.int64) * 86400) + rng.integers(6 * 3600, 20 * 3600, n)
    pickup_late = rng.random(n) < 0.10
    delivery_late = rng.random(n) < 0.08
    ordered = rng.integers(1, 200, n)
    short = rng.random(n) < 0.05
    shipped = np.where(short, (ordered * rng.uniform(0.5, 1.0, n)).astype(np.int64), ordered)
    urgent = rng.random(n) < 0.05
    damaged = rng.random(n) < 0.01
    lost = rng.random(n) < 0.002
    pod_late = rng.random(n) < 0.12
    for begin in range(0, n, CHUNK):
        rows = []
        for i in range(begin, min(begin + CHUNK, n)):
            created = EPOCH + dt.timedelta(seconds=int(start_s[i]))
            promised_pickup = created + dt.timedelta(hours=4)
            promised_delivery = created + dt.timedelta(hours=48)
            delivered = promised_delivery + dt.timedelta(hours=6 if delivery_late[i] else -3)
            pod_due = delivered + dt.timedelta(hours=72)
            rows.append(
                {
                    "order_id": f"o-{i:09d}",
                    "customer_id": str(ids[i]),
                    "order_date": created,
                    "order_day": int(h.order_day[i]),
                    "amount": float(h.amount[i]),
                    "currency": "CNY",
                    "promised_pickup_at": promised_pickup,
                    "promised_delivery_at": promised_delivery,
                    "shipped_at": promised_pickup + dt.timedelta(hours=2 if pickup_late[i] else -1),
                    "delivered_at": None if lost[i] else delivered,
                    "quantity_ordered": int(ordered[i]),
                    "quantity_shipped": int(shipped[i]),
                    "urgent": int(urgent[i]),
                    "damaged": int(damaged[i]),
                    "lost": int(lost[i]),
                    "pod_due_at": pod_due,
                    "pod_returned_at": None if lost[i] else pod_due + dt.timedelta(hours=10 if pod_late[i] else -20),
                }
            )
        yield rows


async def load(db, h, seed: int) -> float:
    from sqlalchemy import insert

    from crm_scoring.scoring.models import orders

    started = time.perf_counter()
    for rows in order_rows(h, seed):
        async with db.transaction() as session:
            await session.execute(insert(orders), rows)
    return time.perf_counter() - started


async def timed(fn) -> tuple[object, float, float]:
    started, started_cpu = time.perf_counter(), time.process_time()
    result = await fn()
    return result, time.perf_counter() - started, time.process_time() - started_cpu


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(args) -> dict:
    from sqlalchemy import func, select

    from crm_common.db import Database
    from crm_scoring.db import migrate
    from crm_scoring.scoring.models import orders
    from crm_scoring.service_levels import reports, service
    from crm_scoring.settings import ScoringSettings

    h = generate(args.customers, args.orders, seed=args.seed)
    last = (EPOCH + dt.timedelta(days=int(h.last_day))).date()
    month_first = service.add_months(last.replace(day=1), -1)  # the last full month
    month = month_first.strftime("%Y-%m")
    now = dt.datetime.combine(service.add_months(month_first, 1), dt.time(), UTC) + dt.timedelta(days=3)
    results: dict = {
        "run_at": dt.datetime.now(UTC).isoformat(timespec="seconds"),
        "args": vars(args),
        "month": month,
        "customers": h.n_customers,
        "orders": int(h.customer.size),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.sqlite:
            url, drop = f"sqlite:///{tmp}/service_levels.db", None
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from scoring_bench import create_postgres_db, drop_postgres_db

            url, name = await create_postgres_db()
            drop = lambda: drop_postgres_db(name)  # noqa: E731
        await asyncio.to_thread(migrate, url)
        db = Database(url)
        try:
            results["load_s"] = round(await load(db, h, args.seed), 2)
            day_from, day_to = (month_first - dt.date(1970, 1, 1)).days, (service.add_months(month_first, 1) - dt.date(1970, 1, 1)).days
            baseline_stmt = (
                select(orders.c.customer_id, func.count())
                .where(orders.c.order_day >= day_from, orders.c.order_day < day_to)
                .group_by(orders.c.customer_id)
            )

            async def baseline():
                async with db.sessions() as session:
                    return len((await session.execute(baseline_stmt)).all())

            async def compute():
                async with db.transaction() as session:
                    return await service.compute_month(session, month, now, ScoringSettings(database_url=url, run_scheduler=False))

            customers_in_month, base_s, base_cpu = await timed(baseline)
            records, compute_s, compute_cpu = await timed(compute)
            results["baseline_group_by"] = {"customers": customers_in_month, "wall_s": round(base_s, 3), "cpu_s": round(base_cpu, 3)}
            results["compute_month"] = {"records": records, "wall_s": round(compute_s, 3), "cpu_s": round(compute_cpu, 3)}
            print(
                f"[month {month}] baseline GROUP BY: {customers_in_month:,} customers in {base_s:.2f} s; "
                f"compute_month: {records:,} records in {compute_s:.2f} s (CPU {compute_cpu:.2f} s)"
            )

            for name, call in (
                ("report", lambda s: reports.service_level_report(s, month, "on_time_delivery_pct", 20, None, 12)),
                ("csv", lambda s: reports.service_level_csv(s, month, "on_time_delivery_pct", None)),
            ):
                times = []
                for _ in range(args.repeat):
                    async with db.sessions() as session:
                        started = time.perf_counter()
                        await call(session)
                        times.append(time.perf_counter() - started)
                results[name] = {
                    "runs": len(times),
                    "median_ms": round(statistics.median(times) * 1000, 1),
                    "p99_ms": round(percentile(times, 0.99) * 1000, 1),
                }
                print(f"[{name}] {len(times)} runs: median {results[name]['median_ms']} ms, p99 {results[name]['p99_ms']} ms")
        finally:
            await db.dispose()
            if drop is not None:
                await drop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--quick", action="store_true", help="2,000 customers and 50,000 orders")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of a fresh PostgreSQL database")
    parser.add_argument("--repeat", type=int, default=50, help="runs of each report")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.customers, args.orders = 2_000, 50_000
    results = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print(f"[done] {RESULTS}")


if __name__ == "__main__":
    os.environ.setdefault("CRM_CURRENCIES", '["CNY"]')
    main()
