"""The fixed vocabulary rules and templates are checked against: channels, audiences, categories,
urgencies, trigger types and the variables each trigger provides to a template."""

from __future__ import annotations

from functools import cache

from crm_common.events import registered_events

CHANNELS = ("email", "sms", "push", "webhook", "inbox")
# "preferred": the contact's own channel choice, falling back to email, then sms
RULE_CHANNELS = CHANNELS + ("preferred",)

# who receives a rule's message
AUDIENCES = {
    "customer_contacts": "every (non-erased) contact of the customer",
    "event_contact": "the contact named in the event (contact_id), else the reporter's address in the event, else all contacts",
    "account_manager": "the customer's named account manager (in-app inbox)",
    "escalation_owner": "the person or team the event escalated to (in-app inbox)",
    "finance": "the finance team's shared in-app inbox (assignee `finance`)",
}
INTERNAL_AUDIENCES = ("account_manager", "escalation_owner", "finance")
FINANCE_INBOX = "finance"

# category -> (kind, default opt-in). Kinds:
#   transactional: ignores opt-out (complaint updates, payment reminders); channel choice still applies
#   service: information the customer subscribes to; default per category; opt-out respected; capped
#   marketing: needs marketing consent and no opt-out; capped; always carries an unsubscribe link
#   internal: our own staff (tasks, alerts)
CATEGORIES: dict[str, tuple[str, bool]] = {
    "complaint_updates": ("transactional", True),
    "payment_reminders": ("transactional", True),
    "shipment_status": ("service", True),
    "delivery_confirmations": ("service", False),
    "bills": ("service", True),
    "monthly_service_report": ("service", False),
    "account_service": ("service", True),
    "contract_renewal": ("service", True),
    "marketing": ("marketing", True),
    "retention": ("marketing", True),
    "win_back": ("marketing", True),
    "internal_tasks": ("internal", True),
    "internal_alerts": ("internal", True),
}

URGENCIES = ("normal", "critical")
# messages due at the same instant go lowest first (then by when their event occurred, then by id), so which of them
# a frequency cap suppresses is decided, not left to chance
PRIORITY = {"critical": 0, "normal": 1}

# triggers produced inside this service by periodic scans or by a manual segment send
INTERNAL_TRIGGERS: dict[str, tuple[str, ...]] = {
    "ContractRenewalDue": ("customer_id", "contract_end", "days_to_contract_end"),
    "CustomerWinBack": ("customer_id", "lost_since", "lost_days"),
    "SegmentSend": ("customer_id", "segment_send_id", "segment"),
}

# present in every rendering context
COMMON_VARIABLES = (
    "customer_id",
    "customer_name",
    "contact_name",
    "account_manager",
    "language",
    "unsubscribe_url",
    "survey_url",
    "event_type",
    "item_count",
)
DIGEST_VARIABLES = ("items",)


def registered_types() -> set[str]:
    return {event_type for event_type, _version in registered_events()}


def known_trigger(event_type: str) -> bool:
    return event_type in registered_types() or event_type in INTERNAL_TRIGGERS


@cache
def _payload_fields(event_type: str) -> frozenset[str]:
    if event_type in INTERNAL_TRIGGERS:
        return frozenset(INTERNAL_TRIGGERS[event_type])
    fields: set[str] = set()
    for (registered_type, _version), model in registered_events().items():
        if registered_type == event_type:
            fields.update(model.model_fields)
    return frozenset(fields)


def trigger_variables(event_type: str, *, digest: bool = False) -> set[str]:
    """The variables a template may use when rendered for this trigger."""
    names = set(_payload_fields(event_type)) | set(COMMON_VARIABLES)
    if digest:
        names |= set(DIGEST_VARIABLES)
    return names


def all_variables() -> set[str]:
    """Every variable any trigger can provide: a template may declare only these."""
    names = set(COMMON_VARIABLES) | set(DIGEST_VARIABLES)
    for event_type in registered_types() | set(INTERNAL_TRIGGERS):
        names |= _payload_fields(event_type)
    return names


def category_kind(category: str) -> str:
    return CATEGORIES[category][0]


def condition_fields(event_type: str) -> set[str]:
    return set(_payload_fields(event_type)) | {f"customer.{f}" for f in ("tier", "abc_class", "status", "account_manager")}
