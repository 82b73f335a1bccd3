"""A/B of `service_levels.measures.month_of`, the month key of every order a consumer batch's service-level refresh
reads (9% of the consumer's samples under bench/ingest_sustained.py --profile): strftime("%Y-%m") against the
f-string of the year and month. Alternating pairs over the same rows, `monthly_records` timed whole.

    .venv/bin/python services/scoring/bench/month_of_ab.py [--pairs 3] [--orders 60000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time

from crm_scoring.service_levels import measures


def strftime_month_of(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m")


def orders(n: int, customers: int) -> list[dict]:
    rng = random.Random(5)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = []
    for i in range(n):
        day = start + dt.timedelta(hours=rng.randint(0, 340 * 24))
        rows.append(
            {
                "customer_id": f"C{i % customers:05d}",
                "order_date": day,
                "cancelled_at": None,
                "shipped_at": day + dt.timedelta(hours=5),
                "delivered_at": day + dt.timedelta(hours=30),
                "promised_pickup_at": day + dt.timedelta(hours=6),
                "promised_at": day + dt.timedelta(hours=rng.choice([24, 36])),
                "damaged": False,
                "lost": False,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--orders", type=int, default=60_000)
    args = parser.parse_args()
    rows = orders(args.orders, 2_000)
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    months = {f"2026-{m:02d}" for m in range(1, 13)}
    fstring = measures.month_of
    assert all(fstring(r["order_date"]) == strftime_month_of(r["order_date"]) for r in rows)
    print(f"load average at start {os.getloadavg()}")
    for pair in range(args.pairs):
        for name, month_of in (("strftime", strftime_month_of), ("f-string", fstring)):
            measures.month_of = month_of
            began = time.process_time()
            measures.monthly_records(rows, [], [], now, months)
            print(f"pair {pair + 1} {name}: {(time.process_time() - began) * 1000:.0f} ms CPU for {len(rows):,} orders")
    measures.month_of = fstring
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
