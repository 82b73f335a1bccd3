"""Helpers for the scoring tests: a deterministic event history, an inbox processor, score snapshots."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from decimal import Decimal

from sqlalchemy import select

from crm_common.consumer import Delivery, InboxProcessor
from crm_common.db import Database
from crm_common.events import encode_envelope, make_event, topic_for
from crm_common.events.complaints import ComplaintFiled, ComplaintResolved, SurveyAnswered
from crm_common.events.customers import CustomerErased, CustomerMerged, CustomerRegistered
from crm_common.events.logistics import (
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderShipped,
    PaymentOverdue,
    PaymentReceived,
    ShipmentDamaged,
    ShipmentDelayed,
    ShipmentLost,
)
from crm_devbroker.testing import CollectingDeadLetters
from crm_scoring.db import migrate
from crm_scoring.scoring.handlers import ScoringHandler
from crm_scoring.scoring.models import customer_scores, customers, orders
from crm_scoring.settings import ScoringSettings

UTC = dt.UTC
AS_OF = dt.datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
SERVICES = ["warehousing", "trunk", "distribution", "express", "cold_chain"]


def clock():
    return AS_OF


async def scoring_db(database_factory, kind: str, label: str = "scoring") -> Database:
    url = await database_factory.create(kind, label)
    await asyncio.to_thread(migrate, url)
    return Database(url)


def settings_for(url: str = "sqlite:///unused.db", **overrides) -> ScoringSettings:
    return ScoringSettings(**{"database_url": url, "run_scheduler": False, **overrides})


def processor(
    db: Database, settings: ScoringSettings | None = None, *, clock=clock, max_attempts: int = 2
) -> tuple[InboxProcessor, CollectingDeadLetters]:
    dead = CollectingDeadLetters()
    handler = ScoringHandler(settings or settings_for(db.url), clock=clock)
    return InboxProcessor(db, handler, dead, max_attempts=max_attempts, retry_delay_s=0.0), dead


def event(payload, key: str, at: dt.datetime | None = None):
    return make_event(payload, key=key, producer="test", occurred_at=at)


def deliveries(envelopes, start_offset: int = 0) -> list[Delivery]:
    return [Delivery(topic_for(e.type), 0, start_offset + i, e.key.encode(), encode_envelope(e)) for i, e in enumerate(envelopes)]


async def feed(proc: InboxProcessor, envelopes, batch_sizes=(50,), rng: random.Random | None = None) -> None:
    """Process the events in batches, then run the rescoring step (as the service's rescoring task would)."""
    items = deliveries(envelopes)
    i = 0
    while i < len(items):
        size = rng.choice(batch_sizes) if rng else batch_sizes[0]
        await proc.process(items[i : i + size])
        i += size
    await proc.handler.rescore_dirty(proc.db)


def history(seed: int = 5, n_customers: int = 24) -> list:
    """A realistic little history: orders with their lifecycle events, payments, complaints, surveys,
    registrations, one merge and one erasure. Returned in a plausible in-order sequence."""
    rng = random.Random(seed)
    out = []
    start = dt.datetime(2024, 7, 1, tzinfo=UTC)
    for c in range(n_customers):
        cid = f"cust-{c:03d}"
        if c % 3 != 2:  # some customers are only known from their orders (stubs)
            out.append(
                (
                    start,
                    event(
                        CustomerRegistered(
                            customer_id=cid,
                            name=f"Customer {c}",
                            credit_limit=50_000.0 if c % 2 else None,
                            share_of_wallet=0.4 if c % 4 == 0 else None,
                        ),
                        cid,
                        start,
                    ),
                )
            )
        size = 10 ** rng.uniform(2, 4.5)  # heavy-tailed order sizes
        gap = rng.uniform(8, 45)
        day = rng.uniform(0, 60)
        stop = 720 if c % 5 else rng.uniform(200, 500)  # every fifth customer stops ordering
        n = 0
        while day < stop:
            n += 1
            oid = f"{cid}-o{n}"
            t = start + dt.timedelta(days=day)
            amount = Decimal(str(round(size * rng.uniform(0.5, 1.5), 2)))
            promised = t + dt.timedelta(days=2)
            out.append(
                (
                    t,
                    event(
                        OrderCreated(
                            order_id=oid,
                            customer_id=cid,
                            order_date=t,
                            amount=amount,
                            margin=(amount * Decimal("0.2")) if n % 2 else None,
                            cost=None if n % 2 else amount * Decimal("0.9"),
                            service_type=SERVICES[(c + n) % 5 if c % 2 else c % 2],
                            promised_delivery_at=promised,
                        ),
                        cid,
                        t,
                    ),
                )
            )
            if rng.random() < 0.05:
                out.append(
                    (
                        t + dt.timedelta(hours=3),
                        event(OrderCancelled(order_id=oid, customer_id=cid, cancelled_at=t + dt.timedelta(hours=3)), cid),
                    )
                )
            else:
                out.append(
                    (
                        t + dt.timedelta(hours=6),
                        event(OrderShipped(order_id=oid, customer_id=cid, shipped_at=t + dt.timedelta(hours=6)), cid),
                    )
                )
                late = rng.random() < 0.15
                delivered = promised + dt.timedelta(hours=20 if late else -20)
                if late:
                    out.append(
                        (
                            t + dt.timedelta(days=1),
                            event(
                                ShipmentDelayed(
                                    order_id=oid, customer_id=cid, delay_minutes=rng.randint(30, 900), reported_at=t + dt.timedelta(days=1)
                                ),
                                cid,
                            ),
                        )
                    )
                if rng.random() < 0.03:
                    out.append(
                        (
                            t + dt.timedelta(days=1),
                            event(
                                ShipmentDamaged(
                                    order_id=oid, customer_id=cid, estimated_loss=Decimal("120.5"), reported_at=t + dt.timedelta(days=1)
                                ),
                                cid,
                            ),
                        )
                    )
                if rng.random() < 0.01:
                    out.append(
                        (
                            t + dt.timedelta(days=1),
                            event(
                                ShipmentLost(
                                    order_id=oid, customer_id=cid, declared_value=Decimal("800"), reported_at=t + dt.timedelta(days=1)
                                ),
                                cid,
                            ),
                        )
                    )
                else:
                    out.append(
                        (
                            delivered,
                            event(
                                OrderDelivered(
                                    order_id=oid, customer_id=cid, delivered_at=delivered, promised_at=promised if n % 3 else None
                                ),
                                cid,
                            ),
                        )
                    )
            if n % 4 == 0:
                due = (t + dt.timedelta(days=30)).date()
                if c % 7 == 3 and n % 8 == 0:
                    out.append(
                        (
                            t + dt.timedelta(days=60),
                            event(
                                PaymentOverdue(
                                    invoice_id=f"{cid}-i{n}",
                                    customer_id=cid,
                                    amount=amount,
                                    due_date=due,
                                    days_overdue=30,
                                    reported_at=t + dt.timedelta(days=60),
                                ),
                                cid,
                            ),
                        )
                    )
                else:
                    paid = t + dt.timedelta(days=rng.choice([20, 28, 35]))
                    out.append(
                        (
                            paid,
                            event(
                                PaymentReceived(invoice_id=f"{cid}-i{n}", customer_id=cid, amount=amount, due_date=due, paid_at=paid), cid
                            ),
                        )
                    )
            if rng.random() < 0.04:
                k = f"{cid}-k{n}"
                filed = t + dt.timedelta(days=3)
                out.append(
                    (
                        filed,
                        event(
                            ComplaintFiled(
                                complaint_id=k,
                                complaint_number=k,
                                customer_id=cid,
                                category="delay",
                                priority="P3",
                                channel="web",
                                filed_at=filed,
                            ),
                            cid,
                        ),
                    )
                )
                if rng.random() < 0.8:
                    resolved = filed + dt.timedelta(days=rng.choice([1, 5]))
                    out.append(
                        (
                            resolved,
                            event(
                                ComplaintResolved(
                                    complaint_id=k,
                                    complaint_number=k,
                                    customer_id=cid,
                                    outcome="refund",
                                    compensation_amount=Decimal("50"),
                                    within_sla=rng.random() < 0.7,
                                    resolved_at=resolved,
                                ),
                                cid,
                            ),
                        )
                    )
                    out.append(
                        (
                            resolved + dt.timedelta(days=1),
                            event(
                                SurveyAnswered(
                                    complaint_id=k, customer_id=cid, score=rng.randint(1, 5), answered_at=resolved + dt.timedelta(days=1)
                                ),
                                cid,
                            ),
                        )
                    )
            day += rng.expovariate(1 / gap)
    merge_at = dt.datetime(2025, 9, 1, tzinfo=UTC)
    out.append((merge_at, event(CustomerMerged(survivor_id="cust-000", merged_id="cust-001", merged_at=merge_at), "cust-000")))
    erase_at = dt.datetime(2026, 1, 1, tzinfo=UTC)
    out.append((erase_at, event(CustomerErased(customer_id="cust-004", erased_at=erase_at), "cust-004")))
    out.sort(key=lambda pair: pair[0])
    return [e for _, e in out]


SNAPSHOT_EXCLUDE = {"computed_at", "emitted"}


async def score_snapshot(db: Database) -> dict[str, dict]:
    async with db.sessions() as session:
        rows = (await session.execute(select(customer_scores))).mappings().all()
    return {r["customer_id"]: {k: v for k, v in r.items() if k not in SNAPSHOT_EXCLUDE} for r in rows}


async def fact_snapshot(db: Database) -> tuple[list, list]:
    async with db.sessions() as session:
        order_rows = (await session.execute(select(orders).order_by(orders.c.order_id))).all()
        customer_rows = (
            await session.execute(
                select(customers.c.customer_id, customers.c.name, customers.c.is_stub, customers.c.credit_limit).order_by(
                    customers.c.customer_id
                )
            )
        ).all()
    return [tuple(r) for r in order_rows], [tuple(r) for r in customer_rows]


def new_id() -> str:
    return uuid.uuid4().hex
