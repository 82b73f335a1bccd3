"""Whether, when and on which channel a contact may be reached. Pure functions: the pipeline and the
dispatcher gather the facts, these decide."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_notifications import catalog

SEND = "send"
DEFER = "defer"
SUPPRESS = "suppress"


@dataclass(frozen=True)
class PreferenceView:
    opted_in: bool | None = None
    channel: str | None = None


@dataclass(frozen=True)
class ContactView:
    contact_id: str | None
    language: str = "zh-CN"
    timezone: str = "Asia/Shanghai"
    quiet_hours_start: dt.time | None = None
    quiet_hours_end: dt.time | None = None
    marketing_consent: bool = False
    erased: bool = False
    preferred_channel: str | None = None
    addresses: dict[str, str] = field(default_factory=dict)  # channel -> address
    preferences: dict[str, PreferenceView] = field(default_factory=dict)  # category or "*" -> choice


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str | None = None
    until: dt.datetime | None = None


def parse_hhmm(value: str | dt.time | None) -> dt.time | None:
    if value is None or isinstance(value, dt.time):
        return value
    hours, minutes = value.split(":")[:2]
    return dt.time(int(hours), int(minutes))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def quiet_hours_end(now: dt.datetime, timezone: str, start: dt.time | None, end: dt.time | None) -> dt.datetime | None:
    """If `now` falls in the contact's quiet hours (local time), the UTC instant they end; else None.

    Windows may cross midnight (22:00-08:00). start == end means no quiet hours.
    """
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(_zone(timezone))
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # crosses midnight
        inside = t >= start or t < end
        end_day = local.date() + dt.timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    local_end = dt.datetime.combine(end_day, end, tzinfo=local.tzinfo)
    return local_end.astimezone(dt.timezone.utc)


def preference_for(contact: ContactView, category: str) -> PreferenceView:
    return contact.preferences.get(category) or PreferenceView()


def consent_decision(contact: ContactView, category: str) -> Decision:
    """Opt-in/opt-out by category kind. Transactional ignores opt-out; marketing needs consent."""
    kind, default_in = catalog.CATEGORIES[category]
    if kind in ("transactional", "internal"):
        return Decision(SEND)
    choice = preference_for(contact, category).opted_in
    everything = contact.preferences.get("*")
    if kind == "marketing":
        if not contact.marketing_consent:
            return Decision(SUPPRESS, "no marketing consent")
        if choice is False or (everything is not None and everything.opted_in is False):
            return Decision(SUPPRESS, f"opted out of {category}")
        return Decision(SEND)
    # service information the contact subscribes to
    if choice is None:
        choice = default_in
    if not choice:
        return Decision(SUPPRESS, f"not subscribed to {category}")
    return Decision(SEND)


def choose_channel(contact: ContactView, rule_channel: str, category: str) -> str | None:
    """The contact's channel choice for the category wins, then their general choice, then the rule's.

    Returns None when the contact has no address on any acceptable channel.
    """
    if rule_channel == "inbox":
        return "inbox"
    chosen = preference_for(contact, category).channel or (contact.preferences.get("*") or PreferenceView()).channel
    candidates: list[str] = []
    if chosen:
        candidates.append(chosen)
    if rule_channel == "preferred":
        if contact.preferred_channel and contact.preferred_channel in catalog.CHANNELS:
            candidates.append(contact.preferred_channel)
        candidates += ["email", "sms"]
    else:
        candidates.append(rule_channel)
    for channel in candidates:
        if contact.addresses.get(channel):
            return channel
    return None


def cap_decision(kind: str, sent_last_day: int, sent_last_week: int, per_day: int, per_week: int) -> Decision:
    """Frequency caps protect against over-marketing: service and marketing messages only."""
    if kind not in ("service", "marketing"):
        return Decision(SEND)
    if sent_last_day >= per_day:
        return Decision(SUPPRESS, f"frequency cap: {sent_last_day} of {per_day} per day already sent")
    if sent_last_week >= per_week:
        return Decision(SUPPRESS, f"frequency cap: {sent_last_week} of {per_week} per week already sent")
    return Decision(SEND)


def decide(
    contact: ContactView,
    *,
    category: str,
    urgency: str,
    now: dt.datetime,
    sent_last_day: int,
    sent_last_week: int,
    per_day: int,
    per_week: int,
    internal: bool = False,
) -> Decision:
    """The order matters: erased and consent first (never overridden), then critical bypass, quiet hours, caps."""
    if contact.erased:
        return Decision(SUPPRESS, "contact erased")
    if internal:
        return Decision(SEND)
    consent = consent_decision(contact, category)
    if consent.action != SEND:
        return consent
    if urgency == "critical":
        return Decision(SEND)
    until = quiet_hours_end(now, contact.timezone, contact.quiet_hours_start, contact.quiet_hours_end)
    if until is not None:
        return Decision(DEFER, "quiet hours", until)
    return cap_decision(catalog.category_kind(category), sent_last_day, sent_last_week, per_day, per_week)
