"""OpenTelemetry traces, configured only by the standard `OTEL_*` variables.

Off unless asked for: `OTEL_TRACES_EXPORTER` (`otlp`, `console`) or an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns them on; `OTEL_SDK_DISABLED=true`
or `OTEL_TRACES_EXPORTER=none` keeps them off. Off, nothing is instrumented and no span is made: the API's
no-op tracer answers, and `current_traceparent()` is one context-variable read.

The trace context crosses Kafka as the W3C `traceparent`: staged with the event in the outbox (the envelope's
`traceparent`), sent by the relay as a Kafka header, read by the consumer as the parent of its handling span.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import Link, Span, SpanKind, Tracer

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

TRACEPARENT = "traceparent"
_TRUE = {"true", "1", "yes", "on"}

_exporter_override: SpanExporter | None = None
_providers: dict[str, TracerProvider] = {}
_span_processors: list[Any] = []
_aiohttp_instrumented = False
_from_environment: bool | None = None  # the process environment's answer, once read


def tracing_requested(environ: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """Whether the `OTEL_*` variables (or a test's exporter) ask for traces. The process's own environment is read
    once: code that asks per item (a send, a rescoring pass) pays a variable read, not four environment lookups."""
    global _from_environment
    if _exporter_override is not None:
        return True
    if environ is not None:
        return _variables_ask(environ)
    if _from_environment is None:
        _from_environment = _variables_ask(os.environ)
    return _from_environment


def _variables_ask(env: os._Environ[str] | dict[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def use_exporter(exporter: SpanExporter | None) -> None:
    """Tests: send every span of this process to `exporter` (synchronously), whatever the variables say.
    None restores the variables' choice for services set up afterwards."""
    global _exporter_override, _aiohttp_instrumented, _from_environment
    _exporter_override = exporter
    _from_environment = None
    _providers.clear()
    _span_processors.clear()
    if _aiohttp_instrumented:  # it patched aiohttp for the whole process, with the previous exporter's provider
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        AioHttpClientInstrumentor().uninstrument()
        _aiohttp_instrumented = False


def _exporters_from_environment() -> list[Any]:
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    exporters: list[Any] = []
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r} (otlp, console or none)")
    return exporters


def _processors() -> list[Any]:
    """One set of span processors per process, shared by every service's provider in it."""
    if not _span_processors:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        if _exporter_override is not None:
            _span_processors.append(SimpleSpanProcessor(_exporter_override))
        else:
            _span_processors.extend(BatchSpanProcessor(e) for e in _exporters_from_environment())  # OTEL_BSP_*
    return _span_processors


def tracer_provider(service: str) -> TracerProvider | None:
    """The provider that names `service` in its resource (`OTEL_SERVICE_NAME` wins), made on first use; None when
    tracing is off. One per service so that tests running several services in one process tell them apart."""
    if not tracing_requested():
        return None
    provider = _providers.get(service)
    if provider is None:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider

        name = os.environ.get("OTEL_SERVICE_NAME") or service
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))  # sampler: OTEL_TRACES_SAMPLER
        for processor in _processors():
            provider.add_span_processor(processor)
        _providers[service] = provider
        if not isinstance(trace.get_tracer_provider(), TracerProvider):
            trace.set_tracer_provider(provider)  # the process's default: the first service set up in it
    return provider


def tracer(service: str) -> Tracer:
    provider = tracer_provider(service)
    return (provider or trace.get_tracer_provider()).get_tracer("crm_common")


def instrument_app(app: FastAPI, service: str) -> None:
    """Server spans for every request of `app`, continuing the caller's `traceparent`; outgoing aiohttp
    requests (the gateway's upstream calls) carry it on."""
    global _aiohttp_instrumented
    provider = tracer_provider(service)
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="healthz,readyz,metrics")
    if not _aiohttp_instrumented:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        AioHttpClientInstrumentor().instrument(tracer_provider=provider)
        _aiohttp_instrumented = True


def instrument_engine(engine: AsyncEngine, service: str) -> None:
    """A span per SQL statement of `engine`, in `service`'s provider. The instrumentor's `instrument()` works once per
    process and wraps every engine made afterwards; its EngineTracer instruments one engine with the tracer given."""
    provider = tracer_provider(service)
    if provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import __name__ as scope
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    connections = get_meter(scope).create_up_down_counter("db.client.connections.usage", unit="connections")
    statements = _ChildSpansOnly(provider.get_tracer(scope))
    EngineTracer(statements, engine.sync_engine, connections, False, {}, False)  # type: ignore[no-untyped-call]


class _ChildSpansOnly:
    """A tracer that records a statement only inside a span: the relay's and the gauges' polls run outside any
    request or batch, and a root trace per polling SELECT would bury the traces that matter."""

    def __init__(self, tracer: Tracer):
        self._tracer = tracer

    def start_span(self, name: str, context: OtelContext | None = None, **kwargs: Any) -> Span:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self._tracer.start_span(name, context, **kwargs)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, None when there is none (tracing off)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get(TRACEPARENT)


def context_of(traceparent: str | bytes | None) -> OtelContext | None:
    """The remote span context a traceparent names, None when there is none or it is not valid."""
    if not traceparent:
        return None
    value = traceparent.decode("latin-1") if isinstance(traceparent, bytes) else traceparent
    ctx = extract({TRACEPARENT: value})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def traceparent_header(headers: Iterable[tuple[str, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == TRACEPARENT:
            return value
    return None


def enabled(service: str) -> bool:
    """Whether `service` records spans: code that reads or writes trace context only for them asks first."""
    return tracer_provider(service) is not None


def _traceparent_of(span: Span) -> str | None:
    carrier: dict[str, str] = {}
    inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT)


@contextmanager
def batch_span(
    service: str,
    name: str,
    traceparents: Iterable[str | bytes | None],
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Iterator[dict[str | bytes, str | None]]:
    """A span for work done at once for items of several traces (a consumer's batch, scoring's rescoring pass, the
    dispatcher's batch): the current span, a child of the first item's trace and linked to every item's.

    Each other trace gets a span of the same name over the same time, linked to that one, so that every item's trace
    shows the work done for it. Yields, per item traceparent, the traceparent that the item's consequences (an event
    staged, a message queued) continue: the current span's, or its sibling's in the item's own trace."""
    contexts: dict[str | bytes, OtelContext] = {}
    for traceparent in traceparents:
        if traceparent and traceparent not in contexts and (ctx := context_of(traceparent)) is not None:
            contexts[traceparent] = ctx
    parents = {key: trace.get_current_span(ctx).get_span_context() for key, ctx in contexts.items()}
    first = next(iter(contexts.values()), None)
    spans = tracer(service)
    links = [Link(parent) for parent in parents.values()]
    with spans.start_as_current_span(name, context=first, kind=kind, links=links, attributes=attributes) as span:
        own = span.get_span_context()
        continued: dict[str | bytes, str | None] = {}
        siblings: dict[int, Span] = {}
        for key, parent in parents.items():
            if parent.trace_id == own.trace_id:
                continued[key] = _traceparent_of(span)
                continue
            if parent.trace_id not in siblings:
                start = getattr(span, "start_time", None)  # an SDK span's; the API's non-recording span has none
                siblings[parent.trace_id] = spans.start_span(
                    name, context=contexts[key], kind=kind, links=[Link(own)], attributes=attributes, start_time=start
                )
            continued[key] = _traceparent_of(siblings[parent.trace_id])
        try:
            yield continued
        finally:
            for sibling in siblings.values():
                sibling.end()


def span_in(
    service: str, name: str, traceparent: str | None, *, kind: SpanKind = SpanKind.INTERNAL, attributes: dict[str, Any] | None = None
) -> AbstractContextManager[Span | None]:
    """A span in the trace `traceparent` names (else in the current one); nothing at all when tracing is off."""
    if not enabled(service):
        return nullcontext()
    return tracer(service).start_as_current_span(name, context=context_of(traceparent), kind=kind, attributes=attributes)


def producer_span(service: str, name: str, parent: OtelContext | None, attributes: dict[str, Any]) -> AbstractContextManager[Span]:
    return tracer(service).start_as_current_span(name, context=parent, kind=SpanKind.PRODUCER, attributes=attributes)
