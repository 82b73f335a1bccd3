"""One trace from the TMS request to the channel (issue 23, point 1): the gateway's request span, its SQL, the
relay's publish span and Kafka header, the handling spans of scoring and notifications, scoring's rescoring and the
CustomerScored it announces, the notifications dispatcher and the channel's send, all under the trace id the
gateway's request started."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import socket
import uuid

import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from crm_common import tracing
from crm_common.events.customers import ContactSnapshot, CustomerSnapshot
from crm_common.logging import configure_logging
from crm_common.outbox import outbox_table
from crm_devbroker.testing import edge_auth, wait_until
from crm_notifications.delivery.models import Message
from crm_notifications.directory import service as directory
from e2e_support import Platform


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.use_exporter(exporter)
    try:
        yield exporter
    finally:
        tracing.use_exporter(None)


def _service(span) -> str:
    return span.resource.attributes["service.name"]


class _Mailbox:
    """An SMTP server on a free loopback port: the email channel's other end."""

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.messages: list[email.message.EmailMessage] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def mailbox(monkeypatch):
    box = _Mailbox()
    box.controller.start()
    monkeypatch.setenv("NOTIFICATIONS_SMTP_HOST", "127.0.0.1")  # read by the notifications settings the platform builds
    monkeypatch.setenv("NOTIFICATIONS_SMTP_PORT", str(box.port))
    try:
        yield box
    finally:
        box.controller.stop()


async def test_one_trace_from_the_gateway_through_kafka_to_the_consumers(spans, database_factory, kafka_settings, local_broker):
    platform = await Platform.start(database_factory, kafka_settings, kind="sqlite")
    try:
        await platform.settled(extra_s=0.5)
        event = {
            "event_id": str(uuid.uuid4()),
            "type": "OrderCreated",
            "payload": {
                "order_id": "O-trace-1",
                "customer_id": str(uuid.uuid4()),
                "amount": "120.50",
                "service_type": "express",
                "order_date": (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat(),
            },
        }
        async with platform.client() as client:
            response = await client.post("/api/v1/events", json=[event], headers=platform.headers("tms"))
        assert response.status_code == 200, response.text

        def request_span():
            return next(
                s
                for s in spans.get_finished_spans()
                if s.kind is SpanKind.SERVER and _service(s) == "gateway" and s.attributes.get("http.route", "").endswith("/events")
            )

        trace_id = request_span().context.trace_id

        async def both_consumed() -> bool:
            return {"scoring", "notifications"} <= {
                _service(s) for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER and s.context.trace_id == trace_id
            }

        await wait_until(both_consumed, timeout_s=60)
        in_trace = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
        publish = [s for s in in_trace if s.kind is SpanKind.PRODUCER]
        assert publish and {_service(s) for s in publish} == {"gateway"}, [(s.name, _service(s)) for s in publish]
        assert any(s.attributes.get("db.system") for s in in_trace if _service(s) == "gateway"), "no SQL span of the gateway"
        statements = [s for s in spans.get_finished_spans() if s.attributes.get("db.system")]
        assert all(s.parent is not None for s in statements), "a statement outside any request or batch (a poll) made a trace"
        by_id = {s.context.span_id: s for s in in_trace}
        for consumed in (s for s in in_trace if s.kind is SpanKind.CONSUMER):
            assert consumed.parent is not None and by_id[consumed.parent.span_id] in publish  # a child of the relay's publish
            assert consumed.parent.is_remote
    finally:
        await platform.stop()


def test_log_lines_carry_the_current_trace_and_span_ids(spans, capsys):
    configure_logging("tracing-test", json=True)
    with tracing.tracer("tracing-test").start_as_current_span("work") as span:
        logging.getLogger("crm.test").warning("inside a span")
    logging.getLogger("crm.test").warning("outside any span")
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.strip().splitlines()[-2:])
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "trace_id" not in outside and "span_id" not in outside


def test_a_batch_for_two_traces_shows_its_work_in_both(spans):
    """A batch (a consumer's, a rescoring pass, a dispatch) is a child of its first item's trace; the other trace gets a
    span of its own, linked to the batch's, and what is done there for its item continues that span."""
    first, second = (f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01" for _ in range(2))
    with tracing.batch_span("tracing-test", "work", [first, second, first, None]) as continued:
        batch = tracing.current_traceparent()
    own, other = (s for s in sorted(spans.get_finished_spans(), key=lambda s: s.context.trace_id != int(first.split("-")[1], 16)))
    assert f"{own.context.trace_id:032x}" == first.split("-")[1] and f"{own.parent.span_id:016x}" == first.split("-")[2]
    assert f"{other.context.trace_id:032x}" == second.split("-")[1] and f"{other.parent.span_id:016x}" == second.split("-")[2]
    assert [link.context.span_id for link in other.links] == [own.context.span_id]
    assert len(own.links) == 2 and (other.start_time, other.name) == (own.start_time, "work")
    assert continued == {first: batch, second: f"00-{other.context.trace_id:032x}-{other.context.span_id:016x}-01"}


def test_tracing_is_off_unless_the_otel_variables_ask_for_it():
    assert not tracing.tracing_requested({})
    assert not tracing.tracing_requested({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.tracing_requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert tracing.tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.tracing_requested({"OTEL_TRACES_EXPORTER": "console"})


async def test_customer_scored_carries_the_recompute_trace_to_notifications(spans, database_factory, kafka_settings, local_broker):
    """Scoring announces scores in a recompute (its scheduler, or POST /admin/recompute), not per order: the
    CustomerScored events carry the recompute's trace, and notifications consume them in it."""
    platform = await Platform.start(database_factory, kafka_settings, kind="sqlite")
    try:
        await platform.settled(extra_s=0.5)
        customer = str(uuid.uuid4())
        async with platform.client() as client:
            response = await client.post("/api/v1/events", json=[_order(customer)], headers=platform.headers("tms"))
        assert response.status_code == 200, response.text

        async def scoring_has_the_order() -> bool:
            return any(s.kind is SpanKind.CONSUMER and _service(s) == "scoring" for s in spans.get_finished_spans())

        await wait_until(scoring_has_the_order, timeout_s=60)
        scoring = httpx.AsyncClient(
            transport=platform.transports["scoring"], base_url="http://scoring", auth=edge_auth(platform.apps["scoring"])
        )
        async with scoring:
            response = await scoring.post("/admin/recompute")
        assert response.status_code == 200 and sum(response.json()["events"].values()) > 0, response.text
        recompute = next(
            s
            for s in spans.get_finished_spans()
            if s.kind is SpanKind.SERVER and _service(s) == "scoring" and s.attributes.get("http.route") == "/admin/recompute"
        )

        trace_id = recompute.context.trace_id

        def in_the_recompute_trace(span) -> bool:  # a batch's span is a child of its first event, linked to all
            return span.context.trace_id == trace_id or any(link.context.trace_id == trace_id for link in span.links)

        async def notifications_consumed_the_scores() -> bool:
            return any(
                s.kind is SpanKind.CONSUMER and _service(s) == "notifications" and in_the_recompute_trace(s)
                for s in spans.get_finished_spans()
            )

        try:
            await wait_until(notifications_consumed_the_scores, timeout_s=60)
        except AssertionError:  # what did arrive, and in which traces
            for span in spans.get_finished_spans():
                if span.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
                    print(
                        _service(span),
                        span.kind,
                        span.name,
                        f"{span.context.trace_id:032x}",
                        [f"{link.context.trace_id:032x}" for link in span.links],
                    )
            raise
        in_trace = [s for s in spans.get_finished_spans() if s.context.trace_id == recompute.context.trace_id]
        assert any(s.kind is SpanKind.PRODUCER and "crm.scoring" in s.name and _service(s) == "scoring" for s in in_trace), [
            s.name for s in in_trace
        ]
    finally:
        await platform.stop()


def _order(customer: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "OrderCreated",
        "payload": {
            "order_id": f"O-{uuid.uuid4().hex[:10]}",
            "customer_id": customer,
            "amount": "120.50",
            "service_type": "express",
            "order_date": (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat(),
        },
    }


async def test_one_tms_event_is_one_trace_from_the_gateway_to_the_channel(spans, mailbox, database_factory, kafka_settings, local_broker):
    """A ShipmentLost through the gateway: scoring applies it and rescores the customer (scoring has never scored it,
    so the rescoring announces CustomerScored), notifications consumes the loss and the score, queues the critical
    email and the dispatcher sends it. Every step is a span of the trace the gateway's request started, although the
    rescoring and the dispatch are batches of their own that run later."""
    platform = await Platform.start(database_factory, kafka_settings, kind="sqlite")
    try:
        await platform.settled(extra_s=0.5)
        customer, address = str(uuid.uuid4()), f"ops-{uuid.uuid4().hex[:8]}@example.com"
        notifications = platform.apps["notifications"].state.runtime
        async with notifications.transaction() as session:  # the contact as the profile's CustomerRegistered gives it
            contact = ContactSnapshot(contact_id=str(uuid.uuid4()), email=address, preferred_channel="email", language="en")
            snapshot = CustomerSnapshot(customer_id=customer, name="Trace Ltd", status="active", contacts=[contact])
            await directory.apply_snapshot(session, snapshot, notifications.clock.now())
        lost = {
            "event_id": str(uuid.uuid4()),
            "type": "ShipmentLost",
            "payload": {
                "order_id": f"O-{uuid.uuid4().hex[:10]}",
                "customer_id": customer,
                "reported_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(),
            },
        }
        async with platform.client() as client:
            response = await client.post("/api/v1/events", json=[lost], headers=platform.headers("tms"))
        assert response.status_code == 200, response.text
        trace_id = next(
            s.context.trace_id
            for s in spans.get_finished_spans()
            if s.kind is SpanKind.SERVER and _service(s) == "gateway" and s.attributes.get("http.route", "").endswith("/events")
        )

        def in_trace() -> list:
            return [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]

        async def scored_and_queued() -> bool:
            announced = {s.context.span_id for s in in_trace() if s.kind is SpanKind.PRODUCER and _service(s) == "scoring"}
            consumed_score = any(  # a batch's span is a child of its first event's publish, linked to every event's
                s.kind is SpanKind.CONSUMER and _service(s) == "notifications" and announced & {link.context.span_id for link in s.links}
                for s in in_trace()
            )
            async with notifications.db.sessions() as session:
                queued = await session.scalar(select(Message.id).where(Message.customer_id == customer))
            return consumed_score and queued is not None

        try:
            await wait_until(scored_and_queued, timeout_s=60)
        except AssertionError:  # what did arrive, and in which traces
            for span in spans.get_finished_spans():
                if span.kind is not SpanKind.INTERNAL or not span.attributes.get("db.system"):
                    print(
                        _service(span), span.kind, span.name, f"{span.context.trace_id:032x}", span.parent and f"{span.parent.span_id:016x}"
                    )
            raise
        assert await notifications.dispatcher.run_once() >= 1
        # the loss alert; complaints may have opened a complaint for the loss, and its acknowledgement go too
        assert any(m["To"] == address and "lost" in m["Subject"] for m in mailbox.messages), [m["Subject"] for m in mailbox.messages]

        steps = {(_service(s), s.kind, s.name) for s in in_trace()}
        expected = {
            ("gateway", SpanKind.PRODUCER, "logistics.orders publish"),
            ("scoring", SpanKind.INTERNAL, "scoring rescore"),
            ("scoring", SpanKind.PRODUCER, "crm.scoring publish"),
            ("notifications", SpanKind.INTERNAL, "notifications dispatch"),
            ("notifications", SpanKind.CLIENT, "email send"),
        }
        assert expected <= steps, sorted(steps, key=str)
        consumed = {(_service(s), s.kind) for s in in_trace() if s.kind is SpanKind.CONSUMER}
        assert {("scoring", SpanKind.CONSUMER), ("notifications", SpanKind.CONSUMER)} <= consumed
        sends = [s for s in in_trace() if s.name == "email send"]
        assert len(sends) == len(mailbox.messages) and all(s.status.status_code is not StatusCode.ERROR for s in sends)
        async with platform.db("scoring").sessions() as session:  # the announcement itself carries the trace on
            bodies = (
                await session.execute(
                    select(outbox_table.c.body).where(outbox_table.c.event_type == "CustomerScored", outbox_table.c.key == customer)
                )
            ).scalars()
            scored = [orjson.loads(body) for body in bodies]
        assert scored and all(body["traceparent"].split("-")[1] == f"{trace_id:032x}" for body in scored), scored
    finally:
        await platform.stop()
