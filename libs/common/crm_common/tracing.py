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
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
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


def tracing_requested(environ: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """Whether the `OTEL_*` variables (or a test's exporter) ask for traces."""
    env = os.environ if environ is None else environ
    if _exporter_override is not None:
        return True
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def use_exporter(exporter: SpanExporter | None) -> None:
    """Tests: send every span of this process to `exporter` (synchronously), whatever the variables say.
    None restores the variables' choice for services set up afterwards."""
    global _exporter_override, _aiohttp_instrumented
    _exporter_override = exporter
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


def consumer_span(service: str, name: str, parents: Sequence[OtelContext], attributes: dict[str, Any]) -> AbstractContextManager[Span]:
    """The span a consumer applies a batch in: a child of the first event's trace, linked to every event's."""
    links = [Link(trace.get_current_span(ctx).get_span_context()) for ctx in parents]
    return tracer(service).start_as_current_span(
        name, context=parents[0] if parents else None, kind=SpanKind.CONSUMER, links=links, attributes=attributes
    )


def producer_span(service: str, name: str, parent: OtelContext | None, attributes: dict[str, Any]) -> AbstractContextManager[Span]:
    return tracer(service).start_as_current_span(name, context=parent, kind=SpanKind.PRODUCER, attributes=attributes)
