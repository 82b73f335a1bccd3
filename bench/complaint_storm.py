"""A day of bad weather: thousands of ShipmentDelayed events posted at once by a TMS become complaints.

    .venv/bin/python bench/complaint_storm.py [--quick] [--events 10000] [--customers 2000] [--batch 500] [--concurrency 4]

Gateway and complaints run as uvicorn subprocesses on fresh PostgreSQL databases against a private Tansu broker;
the complaints service's consumer (in its API process, as in `make run`) opens a complaint for every delay past
the threshold. The TMS is a second process (bench/ingest_poster.py) posting batches to POST /api/v1/events. The
clock runs from the first post until the complaints database holds a complaint for every event.
Figures: seconds from the first post to the last complaint, complaints opened per second, the gateway's
acceptance time. Baseline (same run, same broker): raw aiokafka produce+consume of the same number of records.
Target (issue 24): 10,000 complaints opened from ShipmentDelayed events in under 60 s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_e2e  # noqa: E402
import perfkit  # noqa: E402
import raw_kafka  # noqa: E402

DELAY_MINUTES = 36 * 60  # past the default threshold (24 h), so every event opens a complaint


def delayed_items(events: int, customers: int, run: str) -> list[dict]:
    """One ShipmentDelayed per order, orders spread over the customers."""
    reported = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return [
        {
            "event_id": str(uuid.uuid4()),
            "type": "ShipmentDelayed",
            "version": 1,
            "occurred_at": reported.isoformat(),
            "payload": {
                "order_id": f"S{run}-{i:07d}",
                "customer_id": f"storm-{i % customers:05d}",
                "tracking_number": f"SF{run}{i:08d}",
                "delay_minutes": DELAY_MINUTES,
                "reason": "typhoon: roads closed",
                "reported_at": reported.isoformat(),
            },
        }
        for i in range(events)
    ]


async def complaints_count(dsn: str) -> int:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval("SELECT count(*) FROM complaints")
    finally:
        await connection.close()


async def wait_for_complaints(dsn: str, expected: int, *, stall_s: float = 180.0) -> float:
    """Polls until `expected` complaints exist; returns the moment (epoch seconds) the count was first seen."""
    last, changed = -1, time.monotonic()
    while True:
        count = await complaints_count(dsn)
        if count >= expected:
            return time.time()
        if count != last:
            last, changed = count, time.monotonic()
        elif time.monotonic() - changed > stall_s:
            raise TimeoutError(f"{count}/{expected} complaints; no progress for {stall_s:.0f} s")
        await asyncio.sleep(0.1)


async def measure(args, log_dir: Path) -> dict:
    events = args.events or (1_000 if args.quick else 10_000)
    customers = args.customers or (200 if args.quick else 2_000)
    with perfkit.local_broker(log_dir) as broker:
        await perfkit.prepare_topics(broker.bootstrap, args.partitions)
        raw = await raw_kafka.measure(broker.bootstrap, events, 450, args.partitions)
        print(f"[complaint_storm] raw baseline: {raw['produce_consume_eps']:,.0f} events/s produce+consume", flush=True)
        api_key, key_entry = perfkit.tms_api_key()
        async with perfkit.fresh_databases("gateway", "complaints") as urls:
            gateway = perfkit.Server(
                "gateway",
                perfkit.APPS["gateway"],
                perfkit.service_env("gateway", urls["gateway"], broker.bootstrap, api_keys=[key_entry], db_pool_size="10"),
                log_dir=log_dir,
            )
            complaints = perfkit.Server(
                "complaints",
                perfkit.APPS["complaints"],
                perfkit.service_env("complaints", urls["complaints"], broker.bootstrap),
                log_dir=log_dir,
            )
            with perfkit.servers(gateway, complaints):
                dsn = perfkit.asyncpg_dsn(urls["complaints"])
                warm = delayed_items(50, 10, "warm")
                ingest_e2e.post(gateway.url, api_key, warm, batch=50, concurrency=1, work=log_dir)
                await wait_for_complaints(dsn, len(warm), stall_s=90)
                items = delayed_items(events, customers, uuid.uuid4().hex[:6])
                print(f"[complaint_storm] posting {events} ShipmentDelayed events for {customers} customers", flush=True)
                waiting = asyncio.create_task(wait_for_complaints(dsn, len(warm) + events))
                profile = perfkit.Profiler(complaints.process.pid, log_dir / "profile-complaints", args.profile) if args.profile else None
                if profile:
                    profile.__enter__()
                batches = await asyncio.to_thread(
                    ingest_e2e.post, gateway.url, api_key, items, batch=args.batch, concurrency=args.concurrency, work=log_dir
                )
                refused = [b for b in batches if b["status"] != 200 or b["accepted"] != b["n"]]
                if refused:
                    raise RuntimeError(f"{len(refused)} batches not fully accepted, e.g. {refused[0]}")
                last_complaint = await waiting
                if profile:
                    profile.__exit__(None, None, None)
                    for frame, own, incl in perfkit.top_frames(log_dir / "profile-complaints.txt", limit=30):
                        print(f"    {incl:6.1%} incl {own:6.1%} self  {frame}", flush=True)
    first_post = min(b["sent_at"] for b in batches)
    accepted_at = max(b["done_at"] for b in batches)
    return {
        "events": events,
        "customers": customers,
        "storm_s": last_complaint - first_post,
        "accept_s": accepted_at - first_post,
        "raw": raw,
    }


def run(args) -> dict:
    figures = asyncio.run(measure(args, perfkit.log_dir_for("complaint_storm")))
    raw_eps = figures["raw"]["produce_consume_eps"]
    rate = figures["events"] / figures["storm_s"]
    full = figures["events"] >= 10_000
    print(
        f"[complaint_storm] {figures['events']} complaints in {figures['storm_s']:.1f} s ({rate:,.0f}/s); accepted in "
        f"{figures['accept_s']:.1f} s",
        flush=True,
    )
    rows = [
        perfkit.row(
            f"{figures['events']:,} ShipmentDelayed -> complaints opened",
            figures["storm_s"],
            unit="s",
            target="< 60 s for 10,000" if full else "",
            met=figures["storm_s"] < 60 if full else None,
        ),
        perfkit.row("complaints opened per second", rate, baseline=raw_eps, unit="events/s"),
        perfkit.row("gateway accepted the storm in", figures["accept_s"], unit="s"),
    ]
    return perfkit.result("complaint_storm", rows, figures=figures)


def add_arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--customers", type=int, default=0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--profile", type=float, default=0, help="py-spy the complaints service for this many seconds from the first post")


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
