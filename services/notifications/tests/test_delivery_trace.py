"""Tracing through the send queue (issue 23): a message queued for an event keeps the event's trace, the dispatcher's
batch and the channel's send are spans of it, and NotificationSent carries it on; with tracing off nothing is kept."""

import uuid

import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from crm_common import tracing
from crm_common.events.logistics import ShipmentLost
from crm_common.outbox import outbox_table
from crm_notifications.delivery.models import Message
from notifications_support import T0, EventFeeder, customer_registered, event


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.use_exporter(exporter)
    try:
        yield exporter
    finally:
        tracing.use_exporter(None)


def _traced(envelope, traceparent: str):
    return envelope.model_copy(update={"traceparent": traceparent})


async def _sent_traceparents(runtime) -> list[str | None]:
    async with runtime.db.sessions() as session:
        bodies = (await session.execute(select(outbox_table.c.body).where(outbox_table.c.event_type == "NotificationSent"))).scalars()
        return [orjson.loads(body).get("traceparent") for body in bodies]


async def test_the_dispatch_and_the_send_are_spans_of_the_trace_of_the_event_that_queued_the_message(nf, smtp, spans):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("t1", [{"contact_id": "kt1", "email": "ops@t1.example", "preferred_channel": "email"}]))
    feeder.processor.traced_as = "notifications"  # what crm_common.runtime.configure_tracing does with tracing on
    staged = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    trace_id = staged.split("-")[1]
    await feeder.feed(_traced(event(ShipmentLost(order_id="O-T1", customer_id="t1", reported_at=T0)), staged))
    async with nf.db.sessions() as session:
        [queued_in] = (await session.scalars(select(Message.traceparent).where(Message.customer_id == "t1"))).all()
    assert queued_in.split("-")[1] == trace_id

    assert await nf.dispatcher.run_once() == 1
    assert [m["To"] for m in smtp.messages] == ["ops@t1.example"]
    in_trace = {(s.kind, s.name): s for s in spans.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id}
    dispatch, send = in_trace[(SpanKind.INTERNAL, "notifications dispatch")], in_trace[(SpanKind.CLIENT, "email send")]
    assert send.parent.span_id == dispatch.context.span_id and send.attributes["crm.channel"] == "email"
    assert [tp.split("-")[1] for tp in await _sent_traceparents(nf)] == [trace_id]


async def test_with_tracing_off_a_queued_message_keeps_no_trace_and_the_dispatch_makes_no_span(nf, smtp):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("t2", [{"contact_id": "kt2", "email": "ops@t2.example", "preferred_channel": "email"}]))
    staged = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"  # a traced producer, an untraced consumer
    await feeder.feed(_traced(event(ShipmentLost(order_id="O-T2", customer_id="t2", reported_at=T0)), staged))
    async with nf.db.sessions() as session:
        assert (await session.scalars(select(Message.traceparent).where(Message.customer_id == "t2"))).all() == [None]
    assert await nf.dispatcher.run_once() == 1
    assert [m["To"] for m in smtp.messages] == ["ops@t2.example"]
    assert await _sent_traceparents(nf) == [None]
