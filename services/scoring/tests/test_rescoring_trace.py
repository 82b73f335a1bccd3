"""Tracing through the batched rescoring (issue 23): a customer's mark keeps the trace of the event that made it, the
rescoring pass shows in that trace and the CustomerScored it announces carries it on; with tracing off the marks'
traceparent column is neither read nor written."""

import uuid

import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import event as sql_event
from sqlalchemy import select

from crm_common import tracing
from crm_common.events.logistics import OrderCreated
from crm_common.outbox import outbox_table
from crm_scoring.scoring.models import rescore_queue
from scoring_support import AS_OF, deliveries, event, processor, scoring_db


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.use_exporter(exporter)
    try:
        yield exporter
    finally:
        tracing.use_exporter(None)


def _order(customer: str, traceparent: str | None = None):
    order = OrderCreated(order_id=f"O-{uuid.uuid4().hex[:8]}", customer_id=customer, order_date=AS_OF.replace(day=1), amount=250)
    return event(order, customer).model_copy(update={"traceparent": traceparent})


def _trace_id(traceparent: str) -> str:
    return traceparent.split("-")[1]


async def _announced(db) -> dict[str, str | None]:
    """customer id -> the traceparent of its CustomerScored in the outbox."""
    async with db.sessions() as session:
        rows = (
            await session.execute(select(outbox_table.c.key, outbox_table.c.body).where(outbox_table.c.event_type == "CustomerScored"))
        ).all()
    return {row.key: orjson.loads(row.body).get("traceparent") for row in rows}


async def test_the_rescoring_continues_the_trace_of_the_event_that_marked_each_customer(database_factory, db_kind, spans):
    db = await scoring_db(database_factory, db_kind, "rescoretrace")
    try:
        proc, dead = processor(db)
        proc.traced_as = "scoring"  # what crm_common.runtime.configure_tracing does with tracing on
        staged = {c: f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01" for c in ("alpha", "beta")}
        await proc.process(deliveries([_order(c, tp) for c, tp in staged.items()]))  # one batch, two traces
        async with db.sessions() as session:
            marks = dict((await session.execute(select(rescore_queue.c.customer_id, rescore_queue.c.traceparent))).all())
        assert {c: _trace_id(tp) for c, tp in marks.items()} == {c: _trace_id(tp) for c, tp in staged.items()}

        assert await proc.handler.rescore_dirty(db) == 2
        announced = await _announced(db)
        assert {c: _trace_id(tp) for c, tp in announced.items()} == {c: _trace_id(tp) for c, tp in staged.items()}
        passes = [s for s in spans.get_finished_spans() if s.name == "scoring rescore"]
        assert sorted(f"{s.context.trace_id:032x}" for s in passes) == sorted(_trace_id(tp) for tp in staged.values())
        by_span = {f"{s.context.span_id:016x}": s for s in passes}
        for customer, traceparent in announced.items():  # each announcement continues the pass span in its own trace
            assert f"{by_span[traceparent.split('-')[2]].context.trace_id:032x}" == _trace_id(staged[customer])
        assert dead.sent == []
    finally:
        await db.dispose()


async def test_with_tracing_off_the_rescoring_neither_reads_nor_writes_the_marks_traceparent(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "rescorenotrace")
    statements: list[str] = []
    sql_event.listen(db.engine.sync_engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    try:
        proc, dead = processor(db)  # untraced, although the producer traced the event
        await proc.process(deliveries([_order("gamma", f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01")]))
        assert await proc.handler.rescore_dirty(db) == 1
        assert await _announced(db) == {"gamma": None}
        touching_marks = [s for s in statements if "rescore_queue" in s]
        assert touching_marks and not [s for s in touching_marks if "traceparent" in s], touching_marks
        assert dead.sent == []
    finally:
        await db.dispose()
