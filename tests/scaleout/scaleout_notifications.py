"""The notifications service as a scale-out target: its one consumer (`notifications`, every event
of five topics) keeps the customer directory and turns events into notifications through the
default rules seeded at start (ShipmentDelayed and ShipmentLost notify the customer's contacts).

Fingerprint from notifications' own tables: the logical notifications (one per event, rule and
recipient: event id, type, rule name, recipient, customer, contact, template variables) and the
directory of customers and contacts. Left out: rule ids (random per database), timestamps and
the messages/digests, which the dispatcher groups by time windows (the dispatcher and the scans
are not Kafka consumers and are switched off for the run).
"""

from __future__ import annotations

from crm_common.events.envelope import EventEnvelope
from crm_common.events.topics import topic_for

EXTRA_ENV = {"NOTIFICATIONS_RUN_DISPATCHER": "false", "NOTIFICATIONS_RUN_SCANS": "false"}

NOTIFICATIONS_SQL = """
SELECT n.event_id, n.event_type, r.name, n.recipient_key, n.customer_id, n.contact_id, CAST(n.variables AS TEXT)
FROM nf_notifications n LEFT JOIN nf_rules r ON r.id = n.rule_id
ORDER BY n.event_id, r.name, n.recipient_key
"""


def _handler():
    from crm_notifications.delivery.handlers import NotificationsHandler

    return NotificationsHandler


def accepts(envelope: EventEnvelope) -> bool:
    handler = _handler()
    return topic_for(envelope.type) in handler.topics and (handler.event_types is None or envelope.type in handler.event_types)


async def fingerprint(url: str, rows, digest) -> dict:
    notifications = await rows(url, NOTIFICATIONS_SQL)
    customers = await rows(
        url,
        "SELECT customer_id, name, status, account_manager, tier, abc_class, erased, merged_into FROM nf_customers ORDER BY customer_id",
    )
    contacts = await rows(
        url,
        "SELECT contact_id, customer_id, name, role, email, phone, preferred_channel, language, "
        "marketing_consent, erased FROM nf_contacts ORDER BY contact_id",
    )
    by_rule: dict[str, int] = {}
    for row in notifications:
        by_rule[str(row[2])] = by_rule.get(str(row[2]), 0) + 1
    return {
        "digest": digest([("notifications", digest(notifications)), ("customers", digest(customers)), ("contacts", digest(contacts))]),
        "notifications": len(notifications),
        "by_rule": dict(sorted(by_rule.items())),
        "directory_customers": len(customers),
        "directory_contacts": len(contacts),
    }
