"""The texts this service writes on a timeline and the descriptions of the complaints it opens itself (TMS incidents),
as a stable message key with parameters.

The console renders an entry from its zh-CN and en message tables (`msg.<key>` in the gateway's console/static/i18n.js);
the English text, rendered here from the same key and parameters, stays in the entry's `body` for API clients that do
not translate. Parameters are codes and identifiers (statuses, priorities, clock kinds, agent and team ids, the rule
record of routing.rule_record) or the writer's own words (`reason`): a reader translates the codes, never the words.
Entries written before keys existed have no key: a reader shows their `body`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# key -> English template; parameters in braces. A key is part of the API: change its text, never its meaning.
ENGLISH: dict[str, str] = {
    "timeline.assigned": "Assigned to {agent} (team {team}) by {rule}, {strategy}",
    "timeline.queued": "Waiting in the queue of team {team} (nobody on shift), routed by {rule}",
    "timeline.assigned_directly": "Assigned to {agent} (team {team})",
    "timeline.queued_directly": "Put in the queue of team {team}",
    "timeline.reassigned": "Reassigned to {agent} (team {team}): {reason}",
    "timeline.reassigned_queued": "Reassigned to the queue of team {team}: {reason}",
    "timeline.handed_over": "Handed to {agent} (team {team}) by the scheduler once on shift, routed by {rule}, {strategy}",
    "timeline.handed_over_unrouted": "Handed to {agent} (team {team}) by the scheduler once on shift, {strategy}",
    "timeline.status_changed": "Status {status_from} → {status_to}",
    "timeline.status_changed_reason": "Status {status_from} → {status_to}: {reason}",
    "timeline.status_changed_customer_replied": "Status {status_from} → {status_to}: the customer replied",
    "timeline.possible_duplicate_of": "Likely duplicate of {number}",
    "timeline.duplicate_filed": "Likely duplicate filed: {number}",
    "timeline.merged": "Complaint {number} merged into this one",
    "timeline.closed_merged_into": "merged into {number}",
    "timeline.reprioritized": "Priority {priority_from} -> {priority_to} (tier {tier}, credit {credit})",
    "timeline.person_erased": "Personal data of an erased person removed",
    "timeline.escalated_near_breach": "{clock} near breach: escalated to {to}",
    "timeline.escalated_breach": "{clock} breach: escalated to {to}",
    # descriptions of the complaints the service opens from TMS incidents (incidents.describe); {text} and {reason}
    # are the TMS's own words
    "description.shipment_damaged": "[TMS] Shipment damaged (order {order_id}): {text}",
    "description.shipment_damaged_unexplained": "[TMS] Shipment damaged (order {order_id}): Shipment reported damaged",
    "description.shipment_lost": "[TMS] Shipment lost (order {order_id})",
    "description.shipment_delayed": "[TMS] Shipment delayed {delay_minutes} minutes (order {order_id})",
    "description.shipment_delayed_reason": "[TMS] Shipment delayed {delay_minutes} minutes (order {order_id}): {reason}",
}

# parameters whose values are codes: English shows them with spaces (in_progress -> in progress)
_CODES = frozenset({"status_from", "status_to", "clock", "strategy"})


def rule_english(rule: dict[str, Any]) -> str:
    """routing.rule_record in English: the stored rule's name (or what it matches), the built-in rule, or none."""
    if rule.get("source") == "fallback":
        return "no matching rule (default team)"
    matches = ", ".join(str(rule[f]) for f in ("category", "region", "service_type") if rule.get(f)) or "any complaint"
    if rule.get("source") == "built_in":
        return f"the built-in rule for {matches}"
    return f"rule “{rule['name']}”" if rule.get("name") else f"the rule for {matches}"


def _english_value(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name == "rule" and isinstance(value, dict):
        return rule_english(value)
    if name in _CODES:
        return str(value).replace("_", " ")
    return str(value)


@dataclass(frozen=True)
class Message:
    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key not in ENGLISH:  # a key the console has no table entry for would show only the English body
            raise ValueError(f"unknown message key {self.key!r}")

    def english(self) -> str:
        return ENGLISH[self.key].format(**{name: _english_value(name, value) for name, value in self.params.items()})


def status_changed(status_from: str, status_to: str, reason: str | None = None, *, customer_replied: bool = False) -> Message:
    params = {"status_from": status_from, "status_to": status_to}
    if customer_replied:
        return Message("timeline.status_changed_customer_replied", params)
    if reason:
        return Message("timeline.status_changed_reason", {**params, "reason": reason})
    return Message("timeline.status_changed", params)


def assignment(
    *, team: str, agent: str | None, strategy: str, rule: dict[str, Any] | None, reason: str | None, by_scheduler: bool = False
) -> Message:
    """What an assignment says: to whom (or the team queue), and why: the routing rule and the strategy that chose,
    the scheduler handing a queued complaint to an agent who came on shift, or the reassigner's reason."""
    params: dict[str, Any] = {"team": team, "agent": agent, "strategy": strategy}
    if reason:
        key = "timeline.reassigned" if agent else "timeline.reassigned_queued"
        return Message(key, {**params, "reason": reason})
    if by_scheduler:
        return Message("timeline.handed_over" if rule else "timeline.handed_over_unrouted", {**params, "rule": rule} if rule else params)
    if rule is not None:
        return Message("timeline.assigned" if agent else "timeline.queued", {**params, "rule": rule})
    return Message("timeline.assigned_directly" if agent else "timeline.queued_directly", params)
