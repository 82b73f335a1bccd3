"""Prometheus metrics every service exports. Defined once here so that several services can share a process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("crm_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "crm_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_BACKLOG = Gauge("crm_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_PUBLISHED = Counter("crm_outbox_published_total", "Outbox rows published", ["service"])
OUTBOX_REQUEUED = Counter(
    "crm_outbox_requeued_total", "Published outbox rows put back to pending because the broker lost them", ["service"]
)
BROKER_LOSSES = Counter("crm_broker_losses_total", "Times a relay or consumer found that the broker lost what it held", ["service", "side"])
EVENTS_CONSUMED = Counter("crm_events_consumed_total", "Events applied by a consumer", ["consumer", "outcome"])
CONSUMER_LAG = Gauge("crm_consumer_lag", "Messages behind the partition's high watermark", ["consumer", "topic", "partition"])
DLQ_MESSAGES = Counter("crm_dlq_messages_total", "Messages sent to a dead-letter topic", ["consumer", "topic"])
OUTBOX_OLDEST_AGE = Gauge("crm_outbox_oldest_pending_age_seconds", "Age of the oldest outbox row not yet published (0: none)", ["service"])
DEAD_LETTERS_WAITING = Gauge("crm_dead_letters_waiting", "Dead letters stored and not yet replayed", ["service"])
CONSUMER_RUNNING = Gauge("crm_consumer_up", "1 while a consumer's loop runs and holds a completed group join, else 0", ["consumer"])
