"""customer-profile's SatisfactionSurveyAnswered (a survey campaign's link or the quarterly survey) feeds the survey
component of the customer's satisfaction score, with the callback surveys after complaints (both databases)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from crm_common.events.customers import SatisfactionSurveyAnswered
from crm_common.events.logistics import OrderCreated, OrderDelivered
from crm_scoring.scoring.models import customer_scores, surveys
from scoring_support import AS_OF, event, feed, new_id, processor, scoring_db


def _history(customer_id: str) -> list:
    """The same orders, delivered on time, for every customer: only the survey can tell them apart."""
    out = []
    for n in range(6):
        day = AS_OF - dt.timedelta(days=20 + 15 * n)
        oid = f"{customer_id}-o{n}"
        out.append(event(OrderCreated(order_id=oid, customer_id=customer_id, order_date=day, amount=Decimal("1000")), customer_id, day))
        delivered = day + dt.timedelta(days=1)
        out.append(
            event(
                OrderDelivered(order_id=oid, customer_id=customer_id, delivered_at=delivered, promised_at=delivered), customer_id, delivered
            )
        )
    return out


def _answer(customer_id: str, score: int, source: str) -> object:
    at = AS_OF - dt.timedelta(days=5)
    return event(
        SatisfactionSurveyAnswered(
            survey_id=new_id(), customer_id=customer_id, source=source, score=score, factors={"on_time": score}, answered_at=at
        ),
        customer_id,
        at,
    )


async def test_survey_answers_move_the_satisfaction_score(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "satsurvey")
    try:
        proc, dead = processor(db)
        pleased, unhappy, silent = f"sat-p-{new_id()[:6]}", f"sat-u-{new_id()[:6]}", f"sat-s-{new_id()[:6]}"
        envelopes = [*_history(pleased), *_history(unhappy), *_history(silent)]
        envelopes += [_answer(pleased, 4, "campaign"), _answer(pleased, 4, "quarterly"), _answer(unhappy, 1, "campaign")]
        await feed(proc, envelopes)
        assert dead.sent == []
        async with db.sessions() as session:
            kept = (await session.execute(select(surveys.c.customer_id, surveys.c.complaint_id, surveys.c.score))).all()
            scores = dict((await session.execute(select(customer_scores.c.customer_id, customer_scores.c.satisfaction))).all())
        assert sorted((cid, score) for cid, _, score in kept) == [(pleased, 4), (pleased, 4), (unhappy, 1)]
        assert all(key.startswith("satisfaction:") for _, key, _ in kept)
        # everything else is perfect for all three: no answer leaves the score at it, 4/5 lowers it a little, 1/5 much more
        assert scores[silent] > scores[pleased] > scores[unhappy]
    finally:
        await db.dispose()
