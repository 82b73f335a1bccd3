"""Outputs on Kafka through the outbox: CustomerTierChanged when a customer crosses into A,
ChurnRiskRaised when a customer's orders stop; and the whole consumer path through the real broker."""

import asyncio
import datetime as dt
import random
from decimal import Decimal

from sqlalchemy import func, select

from crm_common.bus import KafkaPublisher
from crm_common.consumer import inbox_table
from crm_common.events.logistics import OrderCreated
from crm_common.outbox import OutboxRelay
from crm_devbroker.testing import read_events, wait_until
from crm_scoring.runtime import build_runtime
from crm_scoring.scoring.service import recompute_population
from scoring_support import AS_OF, event, fact_snapshot, feed, history, processor, score_snapshot, scoring_db, settings_for


def regular_orders(cid: str, size: float, start: dt.datetime, end: dt.datetime, every_days: float, rng: random.Random):
    out, day, n = [], 0.0, 0
    while start + dt.timedelta(days=day) < end:
        n += 1
        t = start + dt.timedelta(days=day)
        out.append(
            event(
                OrderCreated(
                    order_id=f"{cid}-{n}", customer_id=cid, order_date=t, amount=Decimal(str(round(size * rng.uniform(0.8, 1.2), 2)))
                ),
                cid,
            )
        )
        day += every_days * rng.uniform(0.6, 1.4)
    return out


async def feed_as_time_passes(proc, events, now, start, end, step_days):
    """Events arrive when they happen: each step's orders at the end of the step, the clock following."""
    step = start - dt.timedelta(seconds=1)
    while step < end:
        upto = min(end, step + dt.timedelta(days=step_days))
        now["t"] = upto
        window = [e for e in events if step < dt.datetime.fromisoformat(e.payload["order_date"]) <= upto]
        await feed(proc, window, batch_sizes=(500,))
        step = upto
    now["t"] = end


async def test_tier_change_and_churn_risk_land_on_kafka(database_factory, kafka_settings):
    db = await scoring_db(database_factory, "postgres", "events")
    now = {"t": AS_OF}
    # no service-level targets: these orders are never delivered, and each month's missed completion target would be a
    # churn signal of its own (a medium risk before the stopper's high one)
    no_targets = {tier: {} for tier in ("key_account", "ordinary", "small")}
    settings = settings_for(db.url, kafka=kafka_settings, service_level_targets=no_targets)
    proc, dead = processor(db, settings, clock=lambda: now["t"])
    rng = random.Random(4)
    start = AS_OF - dt.timedelta(days=400)
    events = []
    for c in range(40):
        events += regular_orders(f"c{c:02d}", 200 * (c + 1), start, AS_OF, 7, rng)
    events += regular_orders("stopper", 3000, start, AS_OF - dt.timedelta(days=1), 3, rng)
    events += regular_orders("rising", 500, start, AS_OF, 10, rng)
    await feed_as_time_passes(proc, events, now, start, AS_OF, step_days=30)
    async with db.transaction() as session:
        await recompute_population(session, settings, AS_OF)

    # the rising customer places one very large order: incremental scoring puts it into class A
    big = event(
        OrderCreated(order_id="rising-big", customer_id="rising", order_date=AS_OF - dt.timedelta(hours=1), amount=Decimal("5000000")),
        "rising",
    )
    await feed(proc, [big])
    # 120 days later: everyone kept ordering except the stopper
    later = AS_OF + dt.timedelta(days=120)
    now["t"] = later
    more = []
    for c in range(40):
        more += regular_orders(f"c{c:02d}", 200 * (c + 1), AS_OF + dt.timedelta(days=1), later, 7, random.Random(c))
    renamed = []
    for e in more:  # keep the new orders' ids distinct from the first period's
        p = dict(e.payload)
        renamed.append(event(OrderCreated(**{**p, "order_id": "late-" + p["order_id"]}), e.key))
    await feed_as_time_passes(proc, renamed, now, AS_OF, later, step_days=7)
    async with db.transaction() as session:
        await recompute_population(session, settings, later)
    assert dead.sent == []

    publisher = KafkaPublisher(kafka_settings, client_id="scoring-test")
    try:
        await OutboxRelay(db, publisher, service="scoring").drain()
    finally:
        await publisher.stop()
    tier = await read_events(
        kafka_settings, "crm.scoring", count=1, predicate=lambda e: e.type == "CustomerTierChanged" and e.key == "rising"
    )
    assert tier and tier[0].payload["new_tier"] == "key_account" and tier[0].payload["old_tier"] in ("ordinary", "small")
    assert "class A" in tier[0].payload["reason"]
    churn = await read_events(
        kafka_settings, "crm.scoring", count=1, predicate=lambda e: e.type == "ChurnRiskRaised" and e.key == "stopper"
    )
    assert churn and churn[0].payload["risk_level"] == "high"
    assert churn[0].payload["p_alive"] < 0.3 and "ordering_frequency_dropped" in churn[0].payload["signals"]
    scored = await read_events(
        kafka_settings, "crm.scoring", count=1, predicate=lambda e: e.type == "CustomerScored" and e.key == "stopper"
    )
    assert scored and "loyalty" in scored[0].payload["scores"]
    # steady customers raised no churn alarm
    raised = await read_events(kafka_settings, "crm.scoring", count=100, timeout_s=3, predicate=lambda e: e.type == "ChurnRiskRaised")
    assert {e.key for e in raised} <= {"stopper", "rising"} | {f"c{c:02d}" for c in range(3)}, [
        (e.key, e.payload, e.occurred_at) for e in raised
    ]
    await db.dispose()


async def test_through_the_real_broker_shuffled_and_twice(database_factory, kafka_settings):
    events = history(seed=21, n_customers=10)
    reference = await scoring_db(database_factory, "postgres", "reference")
    proc, _ = processor(reference)
    await feed(proc, events, batch_sizes=(500,))

    db = await scoring_db(database_factory, "postgres", "broker")
    settings = settings_for(db.url, kafka=kafka_settings, consumer_batch_size=200)
    rng = random.Random(3)
    messy = events + rng.sample(events, len(events) // 3)
    rng.shuffle(messy)
    publisher = KafkaPublisher(kafka_settings, client_id="tms-test")
    try:
        from crm_common.events import encode_envelope, topic_for

        futures = [await publisher.send(topic_for(e.type), e.key, encode_envelope(e)) for e in messy]
        await asyncio.gather(*futures)
    finally:
        await publisher.stop()
    runtime = build_runtime(settings, clock=lambda: AS_OF)
    await runtime.start(relay=False, consumers=True)
    try:

        async def applied():
            async with runtime.db.sessions() as session:
                return await session.scalar(select(func.count()).select_from(inbox_table)) == len({e.event_id for e in events})

        await wait_until(applied, timeout_s=60, interval_s=0.5)
    finally:
        await runtime.stop()
    await runtime.handler.rescore_dirty(db)  # whatever the rescoring task had not reached yet
    assert await fact_snapshot(db) == await fact_snapshot(reference)
    assert await score_snapshot(db) == await score_snapshot(reference)
    await reference.dispose()
    await db.dispose()
