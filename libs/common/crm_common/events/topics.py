"""Topic naming: `<domain>.<context>`; dead letters go to `<topic>.dlq`. See docs/events.md."""

from __future__ import annotations

TOPICS: dict[str, tuple[str, ...]] = {
    "crm.customers": (
        "CustomerRegistered",
        "CustomerUpdated",
        "CustomerMerged",
        "CustomerErased",
        "CustomerLost",
        "KeyAccountReportReady",
        "WinBackOfferMade",
        "SatisfactionSurveyInvited",
        "SatisfactionSurveyAnswered",
    ),
    "logistics.orders": (
        "OrderCreated",
        "OrderShipped",
        "OrderDelivered",
        "OrderCancelled",
        "ShipmentDelayed",
        "ShipmentDamaged",
        "ShipmentLost",
        "ProofOfDeliveryReturned",
    ),
    "finance.payments": ("PaymentReceived", "PaymentOverdue", "InvoiceCorrected"),
    "crm.complaints": (
        "ComplaintFiled",
        "ComplaintAssigned",
        "ComplaintEscalated",
        "ComplaintResolved",
        "ComplaintReopened",
        "ComplaintClosed",
        "SurveyAnswered",
    ),
    "crm.scoring": ("CustomerScored", "CustomerTierChanged", "ChurnRiskRaised", "CreditGradeChanged", "ServiceLevelBreached"),
    "crm.notifications": ("NotificationSent", "NotificationFailed"),
}

_TOPIC_OF_TYPE = {event_type: topic for topic, types in TOPICS.items() for event_type in types}

DLQ_SUFFIX = ".dlq"


def topic_for(event_type: str) -> str:
    try:
        return _TOPIC_OF_TYPE[event_type]
    except KeyError:
        raise KeyError(f"no topic for event type {event_type!r}") from None


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


ALL_TOPICS: tuple[str, ...] = tuple(TOPICS) + tuple(dlq_topic(t) for t in TOPICS)
