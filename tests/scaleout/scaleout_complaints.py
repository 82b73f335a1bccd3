"""The complaints service as a scale-out target: TMS incidents (ShipmentDelayed past the threshold,
ShipmentDamaged, ShipmentLost) open complaints, later incidents of the same order attach to them.

Fingerprint from complaints' own tables, keyed by what the events determine: the event that
opened each complaint (source_event_id), its customer, category, priority, channel, status and
claimed amount, its order/tracking references and the kinds of its timeline entries. Left out:
generated ids and numbers (allocated in commit order across partitions), timestamps taken from
the wall clock (filed_at, SLA deadlines) and the assigned agent (least-load routing depends on
which complaints of other customers were open at that moment).
"""

from __future__ import annotations

from crm_common.events.envelope import EventEnvelope
from crm_common.events.topics import topic_for

EXTRA_ENV: dict[str, str] = {}

COMPLAINTS_SQL = """
SELECT source_event_id, customer_id, category, priority, channel, status, claimed_amount, description
FROM complaints ORDER BY source_event_id
"""
REFERENCES_SQL = """
SELECT c.source_event_id, r.kind, r.value
FROM complaint_references r JOIN complaints c ON c.id = r.complaint_id
ORDER BY c.source_event_id, r.kind, r.value
"""
TIMELINE_SQL = """
SELECT c.source_event_id, t.kind, count(*)
FROM timeline_entries t JOIN complaints c ON c.id = t.complaint_id
GROUP BY c.source_event_id, t.kind
ORDER BY c.source_event_id, t.kind
"""


def _handlers():
    from crm_complaints.complaints.handlers import default_handlers
    from crm_complaints.settings import ComplaintsSettings

    return default_handlers(ComplaintsSettings())


def accepts(envelope: EventEnvelope) -> bool:
    return any(topic_for(envelope.type) in h.topics and (h.event_types is None or envelope.type in h.event_types) for h in _handlers())


async def fingerprint(url: str, rows, digest) -> dict:
    complaints = await rows(url, COMPLAINTS_SQL)
    references = await rows(url, REFERENCES_SQL)
    timeline = await rows(url, TIMELINE_SQL)
    by_category: dict[str, int] = {}
    for row in complaints:
        by_category[row[2]] = by_category.get(row[2], 0) + 1
    return {
        "digest": digest([("complaints", digest(complaints)), ("references", digest(references)), ("timeline", digest(timeline))]),
        "complaints": len(complaints),
        "by_category": dict(sorted(by_category.items())),
        "timeline_entries": sum(r[2] for r in timeline),
    }
