"""The population recompute reads each fact table in keyset pages of `recompute_page_rows` rows (issue 20 point 6:
one SELECT of 5,000,000 orders ran past the connections' 30 s command timeout): every statement is bounded, and the
paged facts, and so the scores, are those of one statement per table."""

import math

import pandas as pd
from sqlalchemy import event, func, insert, select

from crm_common.db import utcnow
from crm_scoring.scoring.models import complaints, customers, orders
from crm_scoring.scoring.service import load_facts, recompute_population
from crm_scoring.service_levels.models import service_level_breaches
from scoring_support import AS_OF, feed, history, processor, score_snapshot, scoring_db, settings_for

FRAMES = ("orders", "complaints", "surveys", "invoices", "customers", "service_levels")
PAGE = 7


class Statements:
    """The SELECTs the engine runs, as SQL text."""

    def __init__(self, db):
        self.engine = db.engine.sync_engine
        self.seen: list[str] = []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            self.seen.append(" ".join(statement.split()))

    def reading(self, table: str) -> list[str]:
        return [s for s in self.seen if f"FROM {table} " in s + " "]


async def judged_months(db) -> None:
    """Judged months of several customers (before the months the clock judges), so the breaches are paged on their
    two-column key too."""
    async with db.transaction() as session:
        ids = (await session.execute(select(customers.c.customer_id).order_by(customers.c.customer_id).limit(6))).scalars().all()
        rows = [
            {"customer_id": cid, "month": month, "tier": "ordinary", "missed": [], "announced_at": utcnow(), "verdict": verdict}
            for n, cid in enumerate(ids)
            for month, verdict in (("2025-03", "met"), ("2025-04", "missed" if n % 2 else "not_measured"), ("2025-05", "missed"))
        ]
        await session.execute(insert(service_level_breaches), rows)


async def test_the_recompute_reads_every_fact_table_in_bounded_pages_and_scores_as_one_statement_would(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "pages")
    try:
        whole, paged = settings_for(db.url), settings_for(db.url, recompute_page_rows=PAGE)
        proc, dead = processor(db, whole)
        await feed(proc, history(seed=7, n_customers=18), batch_sizes=(500,))
        assert dead.sent == []
        await judged_months(db)
        async with db.sessions() as session:
            n_orders = await session.scalar(select(func.count()).select_from(orders).where(orders.c.order_day.is_not(None)))
            n_complaints = await session.scalar(select(func.count()).select_from(complaints))
            one = await load_facts(session, whole)
            with Statements(db) as statements:
                pages = await load_facts(session, paged)
        assert n_orders > 10 * PAGE and n_complaints > PAGE and len(one.service_levels) > PAGE

        # one statement per page (the last one short), each with its LIMIT: no statement reads a whole table
        for table, rows in (("orders", n_orders), ("complaints", n_complaints), ("service_level_breaches", len(one.service_levels))):
            read = statements.reading(table)
            assert len(read) == math.floor(rows / PAGE) + 1, (table, len(read), rows)
            assert all("LIMIT" in s for s in read), table
        # ... and together they are the rows of the single statement, in its order and with its types
        for name in FRAMES:
            pd.testing.assert_frame_equal(getattr(pages, name), getattr(one, name), check_exact=True, obj=name)

        async with db.transaction() as session:  # a first recompute stores its verdicts: the two below start alike
            await recompute_population(session, whole, AS_OF, emit=False)
        async with db.transaction() as session:
            first = await recompute_population(session, paged, AS_OF, emit=False)
        by_pages = await score_snapshot(db)
        async with db.transaction() as session:
            second = await recompute_population(session, whole, AS_OF, emit=False)
        assert by_pages == await score_snapshot(db)
        assert first["model"] == second["model"] and first["customers"] == second["customers"] == len(by_pages) > 0
    finally:
        await db.dispose()
