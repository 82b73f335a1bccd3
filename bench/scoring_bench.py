"""Scoring benchmark: prints figures and ratios, writes bench/results/scoring.json.

  .venv/bin/python bench/scoring_bench.py                       # 100k customers / 5M orders
  .venv/bin/python bench/scoring_bench.py --customers 10000 --orders 500000 --events 5000

Sections (each against a baseline measured in the same run):
  recompute   full population recompute in memory (features, quintiles, ABC, BG/NBD + Gamma-Gamma fit,
              every score, and every explanation rendered to the JSON text that is stored) vs a plain numpy
              pass over the same arrays (and a pandas groupby pass as a second reference);
              wall time and peak traced memory (tracemalloc) of each
  rescore     incremental rescoring in memory: batches of touched customers (the rescoring task's batch size)
              scored from their facts with the population model, ms per customer
  bgnbd       BG/NBD maximum-likelihood fit time on the population
  import      `crm-scoring import-orders` bulk load of a CSV into PostgreSQL, then the recompute from the database
  inbox       incremental scoring through InboxProcessor on PostgreSQL (events/s) vs the same inbox with a no-op handler
  broker      the same through the real broker (Tansu) and the service's consumer vs the raw consume rate of that broker
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from crm_scoring.model import bgnbd, engine  # noqa: E402
from crm_scoring.model.features import Facts, compute_features  # noqa: E402
from crm_scoring.settings import ScoringSettings  # noqa: E402
from scoring_data import SERVICE_TYPES, OrderHistory, generate, write_csv  # noqa: E402

RESULTS = HERE / "results" / "scoring.json"


def orders_frame(h: OrderHistory) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": h.customer_ids(),
            "order_day": h.order_day,
            "amount": h.amount,
            "margin": h.margin,
            "service_type": SERVICE_TYPES[h.service],
            "cancelled": False,
            "shipped": True,
            "on_time": 1.0,
            "damaged": False,
            "lost": False,
            "loss": 0.0,
        }
    )


def measure(fn, *, trace: bool, cpu: dict | None = None):
    """(result, wall seconds, peak traced bytes or None); the process CPU seconds go to cpu["s"] when given:
    on the shared machine the wall time also counts the other engineers' work, the CPU time does not."""
    gc.collect()
    if trace:
        tracemalloc.start()
    started, started_cpu = time.perf_counter(), time.process_time()
    result = fn()
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu["s"] = time.process_time() - started_cpu
    peak = None
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, elapsed, peak


def baseline_numpy(frame: pd.DataFrame, as_of: int) -> dict[str, np.ndarray]:
    """A plain numpy pass over the same arrays: counts, sums, first/last, 12-month sums, recency, rank per customer.

    The customer ids are hashed once with pandas' factorize (the recompute hashes them too): numpy's own
    np.unique sorts the 5M id strings and takes about 6 s here, which would flatter the ratio."""
    codes, ids = pd.factorize(frame["customer_id"].to_numpy())
    n = len(ids)
    day = frame["order_day"].to_numpy()
    amount = frame["amount"].to_numpy(dtype=float)
    margin = frame["margin"].to_numpy(dtype=float)
    window = day > as_of - 365
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, codes, day)
    np.maximum.at(last, codes, day)
    revenue_12m = np.bincount(codes[window], weights=amount[window], minlength=n)
    out = {
        "orders": np.bincount(codes, minlength=n),
        "revenue": np.bincount(codes, weights=amount, minlength=n),
        "margin": np.bincount(codes, weights=margin, minlength=n),
        "first": first,
        "last": last,
        "orders_12m": np.bincount(codes[window], minlength=n),
        "revenue_12m": revenue_12m,
        "recency": as_of - last,
        "rank": np.argsort(np.argsort(-revenue_12m, kind="stable"), kind="stable") + 1,
    }
    return out


def baseline_pass(frame: pd.DataFrame, as_of: int) -> pd.DataFrame:
    """What a hand-written pandas analysis would do: one groupby for counts, sums, first/last, 12-month sums."""
    window = frame[frame["order_day"] > as_of - 365]
    g = frame.groupby("customer_id")
    out = g.agg(
        orders=("amount", "size"),
        revenue=("amount", "sum"),
        margin=("margin", "sum"),
        first=("order_day", "min"),
        last=("order_day", "max"),
    )
    w = window.groupby("customer_id").agg(revenue_12m=("amount", "sum"), orders_12m=("amount", "size"))
    out = out.join(w)
    out["recency"] = as_of - out["last"]
    out["rank"] = out["revenue_12m"].rank(ascending=False, method="first")
    return out


RENDER_SLICE = 5000  # as the service's recompute: records and their explanation text exist one slice at a time


def full_recompute(frame: pd.DataFrame, as_of: int, settings: ScoringSettings, timings: dict):
    t = time.perf_counter()
    features = compute_features(Facts(orders=frame), as_of, settings.window_days, settings.default_days)
    timings["features_s"] = time.perf_counter() - t
    t = time.perf_counter()
    model = engine.fit_population(features, settings, as_of)
    timings["fit_population_s"] = time.perf_counter() - t
    t = time.perf_counter()
    scored = engine.score_batch(features, model, settings, as_of)
    timings["score_arrays_s"] = time.perf_counter() - t
    t = time.perf_counter()
    summary = {"classes": {}, "tiers": {}, "explanation_bytes": 0}
    for start in range(0, len(scored), RENDER_SLICE):
        records = scored.records(start, start + RENDER_SLICE)  # what the service writes, explanations as JSON text
        for r in records:
            summary["classes"][r["abc_class"]] = summary["classes"].get(r["abc_class"], 0) + 1
            summary["tiers"][r["tier"]] = summary["tiers"].get(r["tier"], 0) + 1
            summary["explanation_bytes"] += len(r["detail_json"])
    timings["records_and_explanations_s"] = time.perf_counter() - t
    return features, model, summary


def section_recompute(
    h: OrderHistory, settings: ScoringSettings, results: dict, memory: bool
) -> tuple[pd.DataFrame, engine.PopulationModel, pd.DataFrame]:
    frame = orders_frame(h)
    as_of = h.last_day
    numpy_cpu, pandas_cpu, full_cpu = {}, {}, {}
    _, numpy_s, _ = measure(lambda: baseline_numpy(frame, as_of), trace=False, cpu=numpy_cpu)
    _, pandas_s, _ = measure(lambda: baseline_pass(frame, as_of), trace=False, cpu=pandas_cpu)
    timings: dict = {}
    (features, model, summary), full_s, _ = measure(lambda: full_recompute(frame, as_of, settings, timings), trace=False, cpu=full_cpu)
    out = {
        "customers": h.n_customers,
        "orders": int(h.customer.size),
        "baseline_numpy_s": round(numpy_s, 3),
        "baseline_pandas_s": round(pandas_s, 3),
        "recompute_s": round(full_s, 3),
        "ratio_recompute_over_numpy": round(full_s / numpy_s, 1),
        "ratio_recompute_over_pandas": round(full_s / pandas_s, 1),
        "cpu_s": {
            "baseline_numpy": round(numpy_cpu["s"], 3),
            "baseline_pandas": round(pandas_cpu["s"], 3),
            "recompute": round(full_cpu["s"], 3),
            "ratio_recompute_over_numpy": round(full_cpu["s"] / numpy_cpu["s"], 1),
            "ratio_recompute_over_pandas": round(full_cpu["s"] / pandas_cpu["s"], 1),
        },
        "breakdown_s": {k: round(v, 3) for k, v in timings.items()},
        "explanation_bytes_per_customer": round(summary["explanation_bytes"] / max(1, h.n_customers)),
        "classes": summary["classes"],
        "tiers": summary["tiers"],
        "bgnbd": model.bgnbd.as_dict() if model.bgnbd else None,
    }
    print(f"[recompute] {h.n_customers:,} customers / {h.customer.size:,} orders")
    print(f"  baseline: plain numpy pass          {numpy_s:8.2f} s wall {numpy_cpu['s']:8.2f} s CPU")
    print(f"  reference: pandas groupby pass      {pandas_s:8.2f} s wall {pandas_cpu['s']:8.2f} s CPU")
    print(
        f"  full recompute (all scores + text)  {full_s:8.2f} s wall {full_cpu['s']:8.2f} s CPU"
        f"   = {full_s / numpy_s:.1f}x numpy, {full_s / pandas_s:.1f}x pandas (CPU: {full_cpu['s'] / numpy_cpu['s']:.1f}x, "
        f"{full_cpu['s'] / pandas_cpu['s']:.1f}x)"
    )
    print("    " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    if memory:
        _, _, numpy_peak = measure(lambda: baseline_numpy(frame, as_of), trace=True)
        _, _, pandas_peak = measure(lambda: baseline_pass(frame, as_of), trace=True)
        _, _, full_peak = measure(lambda: full_recompute(frame, as_of, settings, {}), trace=True)
        out.update(
            baseline_numpy_peak_mb=round(numpy_peak / 2**20, 1),
            baseline_pandas_peak_mb=round(pandas_peak / 2**20, 1),
            recompute_peak_mb=round(full_peak / 2**20, 1),
            baseline_peak_mb=round(pandas_peak / 2**20, 1),  # the key bench/run_all.py reads (pandas)
            ratio_memory_over_numpy=round(full_peak / numpy_peak, 1),
            ratio_memory_over_pandas=round(full_peak / pandas_peak, 1),
        )
        print(
            f"  peak traced memory: numpy {numpy_peak / 2**20:8.1f} MB, pandas {pandas_peak / 2**20:8.1f} MB, recompute "
            f"{full_peak / 2**20:8.1f} MB "
            f"= {full_peak / numpy_peak:.1f}x numpy, {full_peak / pandas_peak:.1f}x pandas"
        )
    results["recompute"] = out
    return features, model, frame


def section_rescore(
    h: OrderHistory,
    frame: pd.DataFrame,
    model: engine.PopulationModel,
    settings: ScoringSettings,
    results: dict,
    batch: int,
    batches: int = 5,
) -> None:
    """The rescoring task's CPU work for a batch of touched customers: their facts -> features -> scores -> records.
    (Loading the facts and writing the rows are database work, measured by the inbox section.)"""
    rng = np.random.default_rng(11)
    as_of = h.last_day
    ordered = np.argsort(h.customer, kind="stable")
    bounds = np.searchsorted(h.customer[ordered], np.arange(h.n_customers + 1))
    elapsed = cpu = 0.0
    customers = 0
    for _ in range(batches):
        picked = np.sort(rng.choice(h.n_customers, size=min(batch, h.n_customers), replace=False))
        rows = np.concatenate([ordered[bounds[c] : bounds[c + 1]] for c in picked])
        facts = Facts(orders=frame.iloc[rows])
        started, started_cpu = time.perf_counter(), time.process_time()
        features = compute_features(facts, as_of, settings.window_days, settings.default_days)
        records = engine.score_batch(features, model, settings, as_of).records()
        elapsed += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        customers += len(records)
    per_customer_ms = 1000 * elapsed / customers
    results["rescore"] = {
        "batch": batch,
        "batches": batches,
        "customers": customers,
        "seconds": round(elapsed, 3),
        "ms_per_customer": round(per_customer_ms, 4),
        "cpu_ms_per_customer": round(1000 * cpu / customers, 4),
    }
    print(
        f"[rescore] {batches} batches of {batch:,} touched customers (features, scores, explanation text): {per_customer_ms:.3f} ms per "
        "customer wall, "
        f"{1000 * cpu / customers:.3f} ms CPU"
    )


def section_bgnbd(features: pd.DataFrame, results: dict) -> None:
    buyers = features[features["orders_total"] > 0]
    started, started_cpu = time.perf_counter(), time.process_time()
    fit = bgnbd.fit(buyers["bg_x"], buyers["bg_t_x"], buyers["bg_T"])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    results["bgnbd_fit"] = {
        "customers": int(len(buyers)),
        "seconds": round(elapsed, 3),
        "cpu_s": round(cpu, 3),
        "log_likelihood": round(fit.log_likelihood, 2),
        "params": fit.params.as_dict(),
        "converged": fit.converged,
    }
    print(f"[bgnbd] fit on {len(buyers):,} customers: {elapsed:.2f} s wall, {cpu:.2f} s CPU (LL {fit.log_likelihood:,.0f}, {fit.params})")


# ---------------------------------------------------------------- database sections


async def create_postgres_db() -> tuple[str, str]:
    import asyncpg

    admin = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"bench_scoring_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return admin.rsplit("/", 1)[0] + "/" + name, name


async def drop_postgres_db(name: str) -> None:
    import asyncpg

    admin = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def fresh_db():
    from crm_common.db import Database
    from crm_scoring.db import migrate

    url, name = await create_postgres_db()
    await asyncio.to_thread(migrate, url)
    return Database(url), name


async def section_import(h: OrderHistory, rows: int, settings: ScoringSettings, results: dict) -> None:
    from crm_scoring.cli import import_orders

    db, name = await fresh_db()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "orders.csv"
            # a whole-customer subset: the first `rows` orders belong to the lowest customer indexes
            written = write_csv(h, path, limit=rows)
            as_of = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=h.last_day)
            started = time.perf_counter()
            summary = await import_orders(db, settings.model_copy(update={"database_url": db.url}), path, as_of=as_of)
            total = time.perf_counter() - started
        results["import"] = {"rows": written, **summary, "total_s": round(total, 3)}
        print(
            f"[import] {written:,} CSV rows into PostgreSQL: load {summary['load_seconds']:.2f} s ({summary['rows_per_second']:,} rows/s), "
            f"recompute from the database {summary['recompute_seconds']:.2f} s for {summary['customers']:,} customers"
        )
    finally:
        await db.dispose()
        await drop_postgres_db(name)


def order_events(h: OrderHistory, count: int):
    from crm_common.events import make_event
    from crm_common.events.logistics import OrderCreated

    ids = h.customer_ids()
    pick = np.random.default_rng(5).choice(h.customer.size, size=min(count, h.customer.size), replace=False)
    pick.sort()
    envelopes = []
    for i in pick:
        cid = str(ids[i])
        when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=int(h.order_day[i]), hours=10)
        envelopes.append(
            make_event(
                OrderCreated(
                    order_id=f"o{i}",
                    customer_id=cid,
                    order_date=when,
                    amount=Decimal(str(h.amount[i])),
                    margin=Decimal(str(h.margin[i])),
                    service_type=str(SERVICE_TYPES[h.service[i]]),
                ),
                key=cid,
                producer="bench",
            )
        )
    rng = np.random.default_rng(6)
    rng.shuffle(envelopes)  # events of many customers interleaved, as on a real topic
    return envelopes


class NoopHandler:
    name = "bench-noop"
    topics = ("logistics.orders",)
    event_types = None

    async def handle(self, session, event):
        return None

    async def handle_batch(self, session, events):
        return None


class NullDeadLetters:
    async def send(self, topic, key, value, headers=None):
        raise RuntimeError(f"unexpected dead letter on {topic}")


async def section_inbox(h: OrderHistory, count: int, settings: ScoringSettings, results: dict, batch: int = 500) -> None:
    from crm_common.consumer import Delivery, InboxProcessor
    from crm_common.events import encode_envelope
    from crm_scoring.scoring.handlers import ScoringHandler

    envelopes = order_events(h, count)
    deliveries = [Delivery("logistics.orders", 0, i, e.key.encode(), encode_envelope(e)) for i, e in enumerate(envelopes)]
    as_of = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=h.last_day)
    rates = {}
    for label, make_handler in (
        ("noop_inbox", lambda url: NoopHandler()),
        ("scoring", lambda url: ScoringHandler(settings.model_copy(update={"database_url": url}), clock=lambda: as_of)),
    ):
        db, name = await fresh_db()
        try:
            handler = make_handler(db.url)
            processor = InboxProcessor(db, handler, NullDeadLetters(), max_attempts=1)
            started = time.perf_counter()
            for i in range(0, len(deliveries), batch):
                await processor.process(deliveries[i : i + batch])
            elapsed = time.perf_counter() - started
            rates[label] = len(deliveries) / elapsed
            if hasattr(handler, "rescore_dirty"):  # the facts are in; the marked customers are rescored apart
                customers = await handler.rescore_dirty(db)
                total = time.perf_counter() - started
                rates["scoring_with_rescoring"] = len(deliveries) / total
                rates["rescored_customers"] = customers
                rates["rescore_s"] = total - elapsed
        finally:
            await db.dispose()
            await drop_postgres_db(name)
    results["inbox"] = {
        "events": len(deliveries),
        "batch": batch,
        "noop_inbox_events_per_s": round(rates["noop_inbox"]),
        "scoring_events_per_s": round(rates["scoring"]),
        "ratio_scoring_over_noop": round(rates["scoring"] / rates["noop_inbox"], 3),
        "scoring_with_rescoring_events_per_s": round(rates["scoring_with_rescoring"]),
        "rescored_customers": rates["rescored_customers"],
        "rescore_s": round(rates["rescore_s"], 3),
    }
    print(f"[inbox] {len(deliveries):,} OrderCreated events, batches of {batch}, PostgreSQL:")
    print(f"  inbox with a no-op handler   {rates['noop_inbox']:10,.0f} events/s")
    print(
        f"  scoring (facts + marks)      {rates['scoring']:10,.0f} events/s   = {rates['scoring'] / rates['noop_inbox']:.2f}x the no-op "
        "inbox"
    )
    print(
        f"  ... then rescoring the {rates['rescored_customers']:,} marked customers: {rates['rescore_s']:.2f} s; "
        f"events to scores {rates['scoring_with_rescoring']:,.0f} events/s = {rates['scoring_with_rescoring'] / rates['noop_inbox']:.2f}x"
    )


async def section_broker(h: OrderHistory, count: int, settings: ScoringSettings, results: dict) -> None:
    from aiokafka import AIOKafkaConsumer
    from sqlalchemy import func, select

    from crm_common.bus import KafkaPublisher, ensure_topics
    from crm_common.consumer import inbox_table
    from crm_common.events import ALL_TOPICS, encode_envelope
    from crm_common.settings import KafkaSettings
    from crm_devbroker.broker import LocalBroker
    from crm_scoring.runtime import build_runtime

    envelopes = order_events(h, count)
    log_dir = Path(tempfile.mkdtemp())
    broker = LocalBroker(log_path=log_dir / "tansu.log").start()
    try:
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap, topic_prefix=f"b{uuid.uuid4().hex[:6]}.", topic_partitions=6, dev_broker="tansu"
        )
        await ensure_topics(kafka, ALL_TOPICS)
        publisher = KafkaPublisher(kafka, client_id="bench")
        futures = [await publisher.send("logistics.orders", e.key, encode_envelope(e)) for e in envelopes]
        await asyncio.gather(*futures)
        await publisher.stop()

        consumer = AIOKafkaConsumer(
            kafka.physical("logistics.orders"),
            **kafka.client_options(),
            group_id=f"raw-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_records=500,
        )
        await consumer.start()
        seen, started = 0, time.perf_counter()
        try:
            while seen < len(envelopes) and time.perf_counter() - started < 120:
                for records in (await consumer.getmany(timeout_ms=200, max_records=500)).values():
                    seen += len(records)
        finally:
            await consumer.stop()
        raw_rate = seen / (time.perf_counter() - started)

        db, name = await fresh_db()
        await db.dispose()
        as_of = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=h.last_day)
        from crm_scoring.scoring.service import pending_rescores

        runtime = build_runtime(settings.model_copy(update={"database_url": db.url, "kafka": kafka}), clock=lambda: as_of)
        started = time.perf_counter()
        await runtime.start(relay=False, consumers=True)
        try:
            facts_s = None
            while True:  # done = every event applied and every marked customer rescored (by the service's own task)
                async with runtime.db.sessions() as session:
                    done = await session.scalar(select(func.count()).select_from(inbox_table))
                    pending = await pending_rescores(session)
                if done >= len(envelopes) and facts_s is None:
                    facts_s = time.perf_counter() - started
                if (done >= len(envelopes) and pending == 0) or time.perf_counter() - started > 600:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            await runtime.stop()
            await drop_postgres_db(name)
        rate = done / elapsed
        facts_rate = done / (facts_s or elapsed)
        results["broker"] = {
            "events": len(envelopes),
            "partitions": 6,
            "raw_consume_events_per_s": round(raw_rate),
            "scoring_consumer_events_per_s": round(rate),
            "ratio_scoring_over_raw": round(rate / raw_rate, 3),
            "facts_applied_events_per_s": round(facts_rate),
            "batch": runtime.settings.consumer_batch_size,
            "note": "one scoring replica; includes the consumer group join; scoring rate = until every marked customer is rescored",
        }
        print(
            f"[broker] {len(envelopes):,} events on 6 partitions of a local Tansu broker (consumer batches of "
            f"{runtime.settings.consumer_batch_size}):"
        )
        print(f"  raw consume (getmany, no work)       {raw_rate:10,.0f} events/s")
        print(f"  facts applied (inbox complete)       {facts_rate:10,.0f} events/s   = {facts_rate / raw_rate:.3f}x raw")
        print(f"  scored (and every mark rescored)     {rate:10,.0f} events/s   = {rate / raw_rate:.3f}x raw (includes the group join)")
    finally:
        broker.stop()


def save(results: dict) -> None:
    results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))


async def database_sections(args, h: OrderHistory, settings: ScoringSettings, results: dict) -> None:
    sections = [
        ("import", args.no_import, lambda: section_import(h, args.import_rows, settings, results)),
        ("inbox", args.no_inbox, lambda: section_inbox(h, args.events, settings, results)),
        ("broker", args.no_broker, lambda: section_broker(h, args.events, settings, results)),
    ]
    for name, skip, run in sections:
        if skip:
            continue
        try:
            await run()
        except Exception as exc:  # one failing section (e.g. no PostgreSQL) does not lose the others' figures
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"[{name}] failed: {type(exc).__name__}: {exc}")
        save(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--events", type=int, default=20_000, help="events for the incremental (inbox/broker) sections")
    parser.add_argument("--import-rows", type=int, default=500_000, help="CSV rows for the import section")
    parser.add_argument("--no-memory", action="store_true", help="skip the traced-memory passes")
    parser.add_argument("--no-import", action="store_true")
    parser.add_argument("--no-inbox", action="store_true")
    parser.add_argument("--no-broker", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rescore-batch", type=int, default=2000, help="customers per incremental rescoring batch (SCORING_RESCORE_BATCH_SIZE)"
    )
    args = parser.parse_args()

    settings = ScoringSettings(run_scheduler=False)
    results: dict = {
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "args": vars(args),
    }
    started = time.perf_counter()
    h = generate(args.customers, args.orders, seed=args.seed)
    print(
        f"[data] {h.n_customers:,} customers, {h.customer.size:,} orders generated in {time.perf_counter() - started:.1f} s "
        f"(top 1% of customers bring {top_share(h, 0.01):.0%} of revenue, top 20% bring {top_share(h, 0.2):.0%})"
    )
    features, model, frame = section_recompute(h, settings, results, memory=not args.no_memory)
    save(results)
    section_rescore(h, frame, model, settings, results, args.rescore_batch)
    save(results)
    section_bgnbd(features, results)
    save(results)
    del features, frame
    gc.collect()
    asyncio.run(database_sections(args, h, settings, results))
    save(results)
    print(f"[done] process max RSS {results['max_rss_mb']:,} MB; results in {RESULTS}")


def top_share(h: OrderHistory, fraction: float) -> float:
    revenue = np.bincount(h.customer, weights=h.amount, minlength=h.n_customers)
    ordered = np.sort(revenue)[::-1]
    return float(ordered[: max(1, int(len(ordered) * fraction))].sum() / ordered.sum())


if __name__ == "__main__":
    main()
