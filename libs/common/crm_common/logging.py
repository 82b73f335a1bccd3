"""Structured JSON logs with the correlation id, and phone numbers and emails masked."""

from __future__ import annotations

import logging
import re
import sys

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor

from crm_common.context import correlation_id_var

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(r"(?<![\w:.-])(\+?\d[\d -]{5,}\d)(?![\w:.-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_PII_KEYS = frozenset({"timestamp", "level", "logger", "service", "correlation_id", "trace_id", "span_id"})


def _mask_phone(match: re.Match[str]) -> str:
    candidate: str = match.group(1)
    if _DATE.fullmatch(candidate):  # a date, not a phone number
        return candidate
    return "*" * max(0, len(candidate) - 4) + candidate[-4:]


def mask_pii(text: str) -> str:
    """Keep enough to recognise a value in a log, not enough to contact the person."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(_mask_phone, text)


def _mask_processor(_logger: object, _name: str, event_dict: EventDict) -> EventDict:
    for key, value in list(event_dict.items()):
        if isinstance(value, str) and key not in _NOT_PII_KEYS:
            event_dict[key] = mask_pii(value)
    return event_dict


def _add_correlation_id(_logger: object, _name: str, event_dict: EventDict) -> EventDict:
    correlation_id = correlation_id_var.get()
    if correlation_id and "correlation_id" not in event_dict:
        event_dict["correlation_id"] = correlation_id
    return event_dict


def _add_trace_ids(_logger: object, _name: str, event_dict: EventDict) -> EventDict:
    """The current span's ids, as OTLP backends print them (hex), so a log line leads to its trace."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = format(span_context.trace_id, "032x")
        event_dict["span_id"] = format(span_context.span_id, "016x")
    return event_dict


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        _add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _mask_processor,
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
