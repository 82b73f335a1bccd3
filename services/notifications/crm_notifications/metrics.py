"""Metrics of this service (unique crm_notifications_ names)."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGE_TRANSITIONS = Counter("crm_notifications_message_transitions_total", "Messages entering a status", ["channel", "status"])
SEND_LATENCY = Histogram(
    "crm_notifications_send_seconds",
    "Time a channel took to accept a message",
    ["channel", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DISPATCH_QUEUE_DUE = Gauge("crm_notifications_dispatch_queue_due", "Messages due for sending now (waiting, or a lapsed lease)")
DISPATCH_QUEUE_OLDEST_DUE_AGE = Gauge(
    "crm_notifications_dispatch_queue_oldest_due_age_seconds", "How long the longest-waiting due message has been due (0: none)"
)
