"""The judgement of the last closed month is a function of the facts, not of their arrival order (issue 20, the CI
failure of test_through_the_real_broker_shuffled_and_twice): a month is judged against the targets of the customer's
agreed (commercial) tier, which churn risk does not move, and every rescoring judges it again."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_common.events import decode_envelope
from crm_common.events.complaints import ComplaintFiled
from crm_common.events.customers import CustomerRegistered, CustomerRegisteredV3, CustomerUpdated, CustomerUpdatedV3
from crm_common.events.logistics import OrderCreated, OrderDelivered
from crm_common.outbox import outbox_table
from crm_scoring.service_levels.models import service_level_breaches
from scoring_support import AS_OF, event, feed, processor, score_snapshot, scoring_db, settings_for

UTC = dt.UTC
MAY = dt.datetime(2026, 5, 2, 9, 0, tzinfo=UTC)  # the last closed month at the tests' clock (30 June)


def may_orders(customer: str, count: int = 25, late: int = 3) -> list:
    """`count` May orders, `late` of them delivered after their promise: 88% on time with the defaults, which meets
    the small tier's 85% and misses the ordinary (and the former at_risk) 90%."""
    out = []
    for n in range(count):
        at = MAY + dt.timedelta(days=n)
        promised = at + dt.timedelta(days=2)
        delivered = promised + dt.timedelta(hours=5 if n < late else -5)
        out.append(
            event(
                OrderCreated(
                    order_id=f"{customer}-{n}", customer_id=customer, order_date=at, amount=Decimal("100"), promised_delivery_at=promised
                ),
                customer,
            )
        )
        out.append(event(OrderDelivered(order_id=f"{customer}-{n}", customer_id=customer, delivered_at=delivered), customer))
    return out


def open_complaint(customer: str) -> list:
    """A complaint open past its SLA at the clock: a churn signal of its own (with a breach: two, a high risk)."""
    filed = AS_OF - dt.timedelta(days=10)
    payload = ComplaintFiled(
        complaint_id=f"k-{customer}", complaint_number=f"CMP-{customer}", customer_id=customer, category="delay", priority="P3",
        channel="web", filed_at=filed,
    )  # fmt: skip
    return [event(payload, customer)]


def facts() -> list:
    return [*open_complaint("c"), *may_orders("c"), *may_orders("d", late=1)]


async def _state(db) -> tuple[list, dict]:
    async with db.sessions() as session:
        breaches = (
            await session.execute(
                select(
                    service_level_breaches.c.customer_id,
                    service_level_breaches.c.month,
                    service_level_breaches.c.tier,
                    service_level_breaches.c.verdict,
                    service_level_breaches.c.missed,
                ).order_by(service_level_breaches.c.customer_id, service_level_breaches.c.month)
            )
        ).all()
    return [tuple(r) for r in breaches], await score_snapshot(db)


async def _apply(database_factory, db_kind: str, label: str, batches: list[list], settings_overrides: dict | None = None):
    """Feed the batches one after the other, the rescoring running after each (as the service's task may)."""
    db = await scoring_db(database_factory, db_kind, label)
    proc, dead = processor(db, settings_for(db.url, **(settings_overrides or {})))
    for batch in batches:
        await feed(proc, batch, batch_sizes=(len(batch),))
    assert dead.sent == []
    state = await _state(db)
    await db.dispose()
    return state


def _shuffled_batches(rng: random.Random, events: list) -> list[list]:
    messy = events + rng.sample(events, len(events) // 3)  # duplicates, as a redelivering broker gives them
    rng.shuffle(messy)
    cuts = sorted(rng.sample(range(1, len(messy)), rng.randint(1, 6)))
    return [messy[a:b] for a, b in zip([0, *cuts], [*cuts, len(messy)])]


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_the_same_facts_in_any_order_give_the_same_breaches_and_scores(database_factory, db_kind):
    events = facts()
    # the complaint scored first (a medium churn risk), then the orders; and everything in one batch: before the fix the
    # first judged May against the stored tier (small: met) and the second against an unscored customer's (missed),
    # and each state kept itself (a breach is a churn signal, two signals a high risk, high risk the at_risk tier)
    reference = await _apply(database_factory, db_kind, "one_batch", [events])
    complaint_first = await _apply(database_factory, db_kind, "complaint_first", [events[:1], events[1:]])
    assert complaint_first == reference
    for seed in range(3):
        shuffled = await _apply(database_factory, db_kind, f"shuffled{seed}", _shuffled_batches(random.Random(seed), events))
        assert shuffled == reference, seed
    breaches, scores = reference
    # c (no population model: no class, the small tier) meets small's 85% on time
    assert breaches == [("c", "2026-05", "small", "met", []), ("d", "2026-05", "small", "met", [])]
    assert scores["c"]["tier"] == "small" and scores["c"]["churn_risk"] == "medium"


async def _announced(db) -> list:
    async with db.sessions() as session:
        bodies = (await session.scalars(select(outbox_table.c.body).order_by(outbox_table.c.id))).all()
    return [e.parsed() for e in map(decode_envelope, bodies) if e.type == "ServiceLevelBreached"]


def _flag(customer: str, band: str | None, cls=CustomerUpdated):
    return event(cls(customer_id=customer, name=f"Customer {customer}", size_band=band), customer)


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_a_late_class_change_judges_the_month_again_against_the_new_agreed_tier(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "late_flag")
    proc, dead = processor(db)
    await feed(proc, [_flag("c", None, CustomerRegistered), *may_orders("c")])
    assert await _announced(db) == []  # small: 88% on time meets 85%

    # the profile flags c as a key account (95% on time agreed): May is judged again in the rescoring's transaction
    await feed(proc, [_flag("c", "key_account")])
    announced = await _announced(db)
    assert [(b.customer_id, b.month, b.tier) for b in announced] == [("c", "2026-05", "key_account")]
    assert [(m.measure, m.target, m.actual) for m in announced[0].missed] == [("on_time_delivery_pct", 95.0, 88.0)]
    flagged = await _state(db)
    assert flagged[0] == [("c", "2026-05", "key_account", "missed", [{"measure": "on_time_delivery_pct", "target": 95.0, "actual": 88.0}])]
    assert "service_level_breached" in flagged[1]["c"]["detail"]["churn_risk"]["inputs"]["signals"]
    assert flagged[1]["c"]["tier"] == "key_account"  # a key account stays one whatever its churn risk

    # the flag removed again: the breach is forgotten (no event), and the scores no longer read it
    await feed(proc, [_flag("c", None)])
    unflagged = await _state(db)
    assert unflagged[0] == [("c", "2026-05", "small", "met", [])] and len(await _announced(db)) == 1
    assert "service_level_breached" not in unflagged[1]["c"]["detail"]["churn_risk"]["inputs"]["signals"]
    assert dead.sent == []
    await db.dispose()

    # the flag arriving before the orders gives the same judgement
    early = await _apply(database_factory, db_kind, "early_flag", [[_flag("c", "key_account", CustomerRegistered)], may_orders("c")])
    assert early[0] == flagged[0]


def test_at_risk_targets_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="at_risk are no longer used.*agreed \\(commercial\\) tier"):
        settings_for(service_level_targets={"at_risk": {"on_time_delivery_pct": 90}})
    with pytest.raises(ValueError, match="unknown tiers \\['gold'\\]"):
        settings_for(service_level_targets={"gold": {"on_time_delivery_pct": 90}})
    assert "at_risk" not in settings_for().service_level_targets


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_the_customers_own_agreement_replaces_its_tiers_defaults(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "agreement")
    proc, dead = processor(db)

    def agreed(targets: dict, cls=CustomerUpdatedV3):
        return event(cls(customer_id="c", name="Customer c", service_level_agreement=targets), "c")

    # small's default is 85% on time (met at 88%); c agreed 90% and a ceiling of 0 billing corrections
    await feed(proc, [agreed({"on_time_delivery_pct": 90, "billing_corrections": 0}, CustomerRegisteredV3), *may_orders("c")])
    announced = await _announced(db)
    assert [(b.customer_id, b.month, b.tier) for b in announced] == [("c", "2026-05", "small")]
    assert [(m.measure, m.target, m.actual) for m in announced[0].missed] == [("on_time_delivery_pct", 90.0, 88.0)]
    # the agreement lowered to 80%: the month meets it, the breach is forgotten
    await feed(proc, [agreed({"on_time_delivery_pct": 80})])
    assert (await _state(db))[0] == [("c", "2026-05", "small", "met", [])] and len(await _announced(db)) == 1
    assert dead.sent == []
    await db.dispose()


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_months_never_judged_or_not_measured_do_not_count_as_met(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "judged_months")
    proc, dead = processor(db, settings_for(db.url, service_level_targets={"small": {"on_time_delivery_pct": 85}}))
    april = [
        event(OrderCreated(order_id=f"a-{n}", customer_id="c", order_date=MAY - dt.timedelta(days=20 + n), amount=Decimal("100")), "c")
        for n in range(3)
    ]
    unpromised = [
        event(OrderCreated(order_id=f"u-{n}", customer_id="u", order_date=MAY + dt.timedelta(days=n), amount=Decimal("100")), "u")
        for n in range(3)
    ]
    await feed(proc, [*april, *may_orders("c"), *unpromised])
    state, scores = await _state(db)
    # c has April and May records; only May, the last closed month, was judged: April is not counted as met
    # u's May has no promise to judge: not measured, counted neither as met nor as missed
    assert state == [("c", "2026-05", "small", "met", []), ("u", "2026-05", "small", "not_measured", [])]
    assert scores["c"]["detail"]["satisfaction"]["inputs"]["service_level_months"] == 1
    assert scores["u"]["detail"]["satisfaction"]["inputs"]["service_level_months"] == 0
    assert dead.sent == []
    await db.dispose()
