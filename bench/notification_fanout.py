"""Notification fan-out: a segment send to N contacts (default 100k) with preferences, quiet hours and
frequency caps applied, dispatched through the real SMS channel adapter to a fake provider on loopback.

    .venv/bin/python bench/notification_fanout.py [--quick] [--contacts 100000]

The notifications runtime runs in this process on a fresh PostgreSQL database (relay, consumers and the
background dispatcher off; the dispatcher's run_once() is driven here, so the figures are the pipeline's).
Directory: contacts arrive as CustomerRegistered events through the service's own inbox handler (2 contacts
per customer; 15% without marketing consent, 10% in quiet hours at the send time, phones and emails
for everyone). The fake provider (bench/fake_provider.py) is a uvicorn process on loopback.
Figures: segment selection + queueing (messages/s), dispatch (messages/s into the channel adapter, counted
by the provider). Baseline (same run): the same number of POSTs to the fake provider from one httpx
client with 8 concurrent requests, i.e. what the provider and loopback take without the pipeline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit  # noqa: E402

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 in Asia/Shanghai


class NoDLQ:
    async def send(self, *a, **k):
        raise AssertionError("dead letter in the benchmark")


async def provider_baseline(url: str, n: int, concurrency: int = 8) -> float:
    import httpx

    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                response = await client.post(
                    "/v1/messages",
                    json={"channel": "sms", "to": f"+86137{i:08d}", "text": "x" * 120, "reference": str(i)},
                    headers={"Idempotency-Key": f"b{i}"},
                )
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - started)


async def measure(args, log_dir: Path) -> dict:
    import httpx

    from crm_common.consumer import Delivery, InboxProcessor
    from crm_common.events import encode_envelope, make_event
    from crm_common.events.customers import ContactSnapshot, CustomerRegistered
    from crm_notifications.clock import ManualClock
    from crm_notifications.runtime import NotificationsRuntime
    from crm_notifications.segments.service import SegmentSendIn, segment_send
    from crm_notifications.settings import NotificationsSettings
    from crm_notifications.templates import service as templates

    contacts = args.contacts or (1_000 if args.quick else 100_000)
    max_dispatch_s = args.max_dispatch_s or (60 if args.quick else 900)
    customers = contacts // 2
    provider = perfkit.Server("fake-provider", "fake_provider:app", {}, log_dir=log_dir, extra_path=[perfkit.BENCH])
    async with perfkit.fresh_databases("notifications") as urls:
        with perfkit.servers(provider):
            baseline_n = min(contacts, 1000 if args.quick else 20000)
            baseline = await provider_baseline(provider.url, baseline_n)
            print(f"[notification_fanout] baseline: {baseline:,.0f} provider POSTs/s", flush=True)
            settings = NotificationsSettings(
                database_url=urls["notifications"],
                run_consumers=False,
                run_outbox_relay=False,
                run_dispatcher=False,
                run_scans=False,
                sms_provider_url=provider.url,
                dispatcher_batch_size=args.batch,
            )
            runtime = NotificationsRuntime(settings, clock=ManualClock(T0))
            try:
                await runtime.seed_defaults()
                processor = InboxProcessor(runtime.db, runtime.handler, NoDLQ())
                started = time.perf_counter()
                batch = []
                offset = 0
                for c in range(customers):
                    people = []
                    for k in range(2):
                        i = 2 * c + k
                        quiet = i % 10 == 3
                        people.append(
                            ContactSnapshot(
                                contact_id=f"k{i}",
                                name=f"Contact {i}",
                                phone=f"+86137{i:08d}",
                                email=f"k{i}@example.com",
                                language="en" if i % 3 == 0 else "zh-CN",
                                marketing_consent=i % 20 >= 3,  # 15% without consent
                                quiet_hours_start=dt.time(9, 0) if quiet else None,
                                quiet_hours_end=dt.time(11, 0) if quiet else None,
                            )
                        )
                    batch.append(
                        make_event(
                            CustomerRegistered(customer_id=f"c{c}", name=f"Shipper {c}", status="active", contacts=people),
                            key=f"c{c}",
                            producer="bench",
                        )
                    )
                    if len(batch) == 500 or c == customers - 1:
                        await processor.process(
                            [Delivery("bench", 0, offset + j, e.key.encode(), encode_envelope(e)) for j, e in enumerate(batch)]
                        )
                        offset += len(batch)
                        batch = []
                directory_s = time.perf_counter() - started
                print(f"[notification_fanout] directory: {contacts:,} contacts in {directory_s:.1f} s", flush=True)
                async with runtime.transaction() as session:
                    for language in ("zh-CN", "en"):
                        await templates.save_version(
                            session,
                            key="bench_news",
                            language=language,
                            subject="News for {{ customer_name }}",
                            body="Dear {{ contact_name }}, our new cold-chain lanes are open.",
                            variables=["customer_name", "contact_name"],
                        )
                request = dict(segment={"status": "active"}, template_key="bench_news", channel="sms", category="marketing")
                started = time.perf_counter()
                async with runtime.transaction() as session:
                    dry = await segment_send(session, SegmentSendIn(**request), T0)
                dry_s = time.perf_counter() - started
                started = time.perf_counter()
                async with runtime.transaction() as session:
                    sent = await segment_send(session, SegmentSendIn(**request, dry_run=False, expected_recipients=dry.recipients), T0)
                queue_s = time.perf_counter() - started
                print(
                    f"[notification_fanout] segment: dry run {dry_s:.1f} s, send {queue_s:.1f} s: {sent.recipients:,} recipients, "
                    f"{sent.queued:,} queued, suppressed {sent.suppressed}",
                    flush=True,
                )
                started = time.perf_counter()
                handled = 0
                import os

                profile = perfkit.Profiler(os.getpid(), log_dir / "profile-dispatch", args.profile) if args.profile else None
                if profile:
                    profile.__enter__()
                while time.perf_counter() - started < max_dispatch_s:  # bounded: the rate is over what was sent
                    n = await runtime.dispatcher.run_once()
                    if not n:
                        break
                    handled += n
                dispatch_s = time.perf_counter() - started
                if profile:
                    profile.__exit__(None, None, None)
                received = httpx.get(provider.url + "/count").json()["n"] - baseline_n
            finally:
                await runtime.stop()
    return {
        "contacts": contacts,
        "customers": customers,
        "recipients": sent.recipients,
        "queued": sent.queued,
        "suppressed": sent.suppressed,
        "handled": handled,
        "delivered_to_provider": received,
        "directory_s": directory_s,
        "dry_run_s": dry_s,
        "queue_s": queue_s,
        "dispatch_s": dispatch_s,
        "queue_mps": sent.queued / queue_s if queue_s else 0.0,
        "dispatch_mps": received / dispatch_s if dispatch_s else 0.0,
        "baseline_mps": baseline,
    }


def run(args) -> dict:
    figures = asyncio.run(measure(args, perfkit.log_dir_for("notification_fanout")))
    deferred = figures["handled"] - figures["delivered_to_provider"]
    print(
        f"[notification_fanout] dispatch: {figures['delivered_to_provider']:,} messages to the provider in {figures['dispatch_s']:.1f} s "
        f"({deferred:,} handled without a send: quiet hours / caps)",
        flush=True,
    )
    end_to_end = figures["delivered_to_provider"] / (figures["queue_s"] + figures["dispatch_s"])
    rows = [
        perfkit.row("segment selection + queueing", figures["queue_mps"], unit="messages/s"),
        perfkit.row(
            "dispatch into the channel adapter",
            figures["dispatch_mps"],
            baseline=figures["baseline_mps"],
            unit="messages/s",
            target="baseline: provider POSTs without the pipeline",
        ),
        perfkit.row(
            f"segment send to {figures['contacts']:,} contacts, end to end", end_to_end, baseline=figures["baseline_mps"], unit="messages/s"
        ),
    ]
    return perfkit.result("notification_fanout", rows, figures=figures)


def add_arguments(parser) -> None:
    parser.add_argument("--contacts", type=int, default=0)
    parser.add_argument("--batch", type=int, default=500, help="dispatcher batch size")
    parser.add_argument("--profile", type=float, default=0, help="py-spy this process for this many seconds of the dispatch")
    parser.add_argument("--max-dispatch-s", type=float, default=0, help="stop dispatching after this long (the rate covers what was sent)")


def main(argv=None) -> int:
    return perfkit.main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
