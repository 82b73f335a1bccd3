"""CreditGradeChanged: announced when a customer's credit grade moves, with the new grade's policy (data) and
whether it fell; a first grade is announced only when its policy calls for something."""

import datetime as dt

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from crm_common.events import decode_envelope
from crm_common.events.customers import CustomerRegistered
from crm_common.events.logistics import OrderCreated, PaymentOverdue, PaymentReceived
from crm_common.outbox import outbox_table
from crm_scoring.settings import ScoringSettings
from scoring_support import AS_OF, event, feed, processor, scoring_db, settings_for


async def _grade_changes(db) -> list:
    async with db.sessions() as session:
        bodies = (await session.scalars(select(outbox_table.c.body).order_by(outbox_table.c.id))).all()
    return [e.parsed() for e in map(decode_envelope, bodies) if e.type == "CreditGradeChanged"]


def _paid_on_time(cid: str, n: int) -> list:
    due = AS_OF.date() - dt.timedelta(days=60)
    return [
        event(
            PaymentReceived(invoice_id=f"{cid}-i{i}", customer_id=cid, amount=100, due_date=due, paid_at=AS_OF - dt.timedelta(days=61)),
            cid,
            AS_OF,
        )
        for i in range(n)
    ]


async def test_a_falling_grade_is_announced_with_the_policy_of_the_new_grade(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "credit")
    try:
        proc, _ = processor(db)
        cid = "good-payer"
        await feed(
            proc,
            [
                event(CustomerRegistered(customer_id=cid, name="Payer"), cid, AS_OF),
                event(OrderCreated(order_id="o1", customer_id=cid, order_date=AS_OF, amount=100), cid, AS_OF),
            ]
            + _paid_on_time(cid, 3),
        )
        [first] = await _grade_changes(db)
        assert (first.old_grade, first.new_grade, first.falling, first.actions) == (None, "A", False, ["priority_service"])
        assert first.review_every_days == 365 and first.reason.startswith("A (high)")
        overdue = PaymentOverdue(
            invoice_id=f"{cid}-late",
            customer_id=cid,
            amount=100,
            due_date=AS_OF.date() - dt.timedelta(days=120),
            days_overdue=120,
            reported_at=AS_OF,
        )
        await feed(proc, [event(overdue, cid, AS_OF)])
        first, fell = await _grade_changes(db)
        assert (fell.old_grade, fell.new_grade, fell.falling) == ("A", "D", True)
        assert fell.actions == ["credit_review_task", "alert_finance"] and fell.review_every_days == 30
        assert fell.reason.startswith("D (serious default)")
        await feed(proc, [event(OrderCreated(order_id="o2", customer_id=cid, order_date=AS_OF, amount=50), cid, AS_OF)])
        assert len(await _grade_changes(db)) == 2  # the grade did not move: nothing new
    finally:
        await db.dispose()


async def test_a_first_grade_whose_policy_asks_nothing_is_not_news(database_factory):
    db = await scoring_db(database_factory, "sqlite", "credit-b")
    try:
        proc, _ = processor(db)
        await feed(proc, [event(OrderCreated(order_id="b1", customer_id="b", order_date=AS_OF, amount=100), "b", AS_OF)])  # no invoices: B
        assert await _grade_changes(db) == []
    finally:
        await db.dispose()


def test_the_credit_policy_is_data_and_needs_every_grade():
    custom = settings_for(
        credit_policy={g: {"actions": [], "review_every_days": 10} for g in "ABCD"}
        | {"C": {"actions": ["alert_finance"], "review_every_days": 45}}
    )
    assert custom.credit_policy["C"].actions == ["alert_finance"] and custom.credit_policy["C"].review_every_days == 45
    with pytest.raises(ValidationError, match="no policy for grade"):
        ScoringSettings(database_url="sqlite:///x.db", credit_policy={"A": {"actions": [], "review_every_days": 10}})
    with pytest.raises(ValidationError):
        ScoringSettings(
            database_url="sqlite:///x.db", credit_policy={g: {"actions": ["send_flowers"], "review_every_days": 10} for g in "ABCD"}
        )
