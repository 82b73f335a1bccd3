"""One trace from the TMS request to the consumers (issue 23, point 1): the gateway's request span, its SQL, the
relay's publish span and Kafka header, and the handling spans of scoring and notifications, which consume the
event in other services, all under the trace id the gateway's request started."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from crm_common import tracing
from crm_common.logging import configure_logging
from crm_devbroker.testing import edge_auth, wait_until
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
