"""Event envelope, payload schemas per bounded context, and the topic map.

Importing this package registers every payload model, so `parse_payload` knows them all.
"""

from crm_common.events import complaints, customers, logistics, notifications, scoring  # noqa: F401  (registration)
from crm_common.events.envelope import (
    EventEnvelope,
    EventPayload,
    InvalidEvent,
    UnknownEventType,
    decode_envelope,
    encode_envelope,
    make_event,
    payload_model,
    registered_events,
)
from crm_common.events.topics import ALL_TOPICS, TOPICS, dlq_topic, topic_for

__all__ = [
    "ALL_TOPICS",
    "EventEnvelope",
    "EventPayload",
    "InvalidEvent",
    "TOPICS",
    "UnknownEventType",
    "decode_envelope",
    "dlq_topic",
    "encode_envelope",
    "make_event",
    "payload_model",
    "registered_events",
    "topic_for",
]
