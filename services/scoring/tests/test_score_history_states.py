"""score_history keeps each announced state's credit grade and churn risk in plain columns too (the credit/churn
movements group by them): equal to the JSON state when scoring writes a row, and back-filled from it by the migration."""

import asyncio
import datetime as dt
import json

from sqlalchemy import insert, text

from crm_common.db import Database
from crm_common.events.logistics import OrderCreated
from crm_scoring.db import migrate
from crm_scoring.scoring.models import score_history
from scoring_support import AS_OF, event, feed, processor, scoring_db


async def test_a_history_row_written_by_scoring_carries_its_states_in_columns(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "histcols")
    try:
        proc, _ = processor(db)
        envelopes = [
            event(OrderCreated(order_id=f"{cid}-{i}", customer_id=cid, order_date=AS_OF - dt.timedelta(days=days * i), amount=500), cid)
            for cid, days in (("weekly", 7), ("quarterly", 90))
            for i in range(1, 6)
        ]
        await feed(proc, envelopes)
        async with db.sessions() as session:
            rows = (await session.execute(text("SELECT scores, credit_grade, churn_risk FROM score_history"))).all()
    finally:
        await db.dispose()
    assert len(rows) >= 2
    for scores, grade, risk in rows:
        state = json.loads(scores) if isinstance(scores, str) else scores
        assert (grade, risk) == (state["credit_grade"], state["churn_risk"])
        assert risk is not None


async def test_the_migration_fills_the_columns_of_existing_history_from_its_json(database_factory, db_kind):
    url = await database_factory.create(db_kind, "histfill")
    await asyncio.to_thread(migrate, url, "0010")
    states = [{"credit_grade": "B", "churn_risk": "high"}, {"credit_grade": None, "churn_risk": "low"}, {"churn_risk": "medium"}]
    db = Database(url)
    try:
        async with db.sessions() as session:
            for i, state in enumerate(states):
                # the columns of revision 0010 only
                await session.execute(
                    insert(score_history).values(customer_id=f"c{i}", scored_at=AS_OF, scores={"scores": {"loyalty": 50.0}, **state})
                )
            await session.commit()
    finally:
        await db.dispose()
    await asyncio.to_thread(migrate, url)
    db = Database(url)
    try:
        async with db.sessions() as session:
            rows = (
                await session.execute(text("SELECT customer_id, credit_grade, churn_risk FROM score_history ORDER BY customer_id"))
            ).all()
    finally:
        await db.dispose()
    assert [tuple(r) for r in rows] == [("c0", "B", "high"), ("c1", None, "low"), ("c2", None, "medium")]
