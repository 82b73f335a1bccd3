"""Whether, when and on which channel a contact may be reached. Pure functions: the pipeline and the
dispatcher gather the facts, these decide."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_notifications import catalog
from crm_notifications.reasons import ERASED, Reason

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


def in_quiet_hours(local_time: dt.time, start: dt.time | None, end: dt.time | None) -> bool:
    """Whether a local wall-clock time falls in the window [start, end), which may cross midnight.
    start == end (or either missing) means no quiet hours."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= local_time < end
    return local_time >= start or local_time < end


def quiet_hours_end(now: dt.datetime, timezone: str, start: dt.time | None, end: dt.time | None) -> dt.datetime | None:
    """If `now` falls in the contact's quiet hours (local time), the first instant after it at which the local clock
    is out of them again; else None. Never an instant before `now`, so a message is deferred once per quiet period.

    The clock usually leaves the window by reaching `end`. On a clock-change night it may instead jump: forward over
    the end (the skipped hour: the jump is the end) or back before the start (the repeated hour: the jump is the end);
    a jump that stays inside the window (01:10 EDT back to 01:10 EST) continues the quiet period to the next `end`.
    """
    zone = _zone(timezone)
    instant = now.astimezone(zone)
    if not in_quiet_hours(_wall_time(instant), start, end):
        return None
    for _ in range(4):  # each pass either finds the end or crosses one clock change; a quiet window spans at most two
        local = instant.replace(tzinfo=None)
        reach_end = dt.datetime.combine(local.date(), end)
        if reach_end <= local:
            reach_end += dt.timedelta(days=1)
        # when the clock reads `end` if its offset stays as it is now (in UTC: aware arithmetic in a zone is wall-clock)
        candidate = instant.astimezone(dt.UTC) + (reach_end - local)
        change = _next_offset_change(instant, candidate.astimezone(zone))
        if change is None:
            return candidate
        instant = change
        if not in_quiet_hours(_wall_time(instant), start, end):
            return instant.astimezone(dt.UTC)
    return instant.astimezone(dt.UTC)


def _wall_time(local: dt.datetime) -> dt.time:
    return local.time().replace(tzinfo=None, fold=0)


def _next_offset_change(after: dt.datetime, until: dt.datetime) -> dt.datetime | None:
    """The first instant in (after, until] at which the zone's UTC offset differs from its offset at `after`, to the
    second (time zone transitions fall on whole seconds); None when the offset at `until` is the same."""
    zone = after.tzinfo
    offset = after.utcoffset()
    if until.utcoffset() == offset:
        return None
    low = math.floor(after.timestamp())  # offset as at `after`
    high = math.ceil(until.timestamp())  # offset changed
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return dt.datetime.fromtimestamp(high, zone)


EVERY_CATEGORY = "*"


def preference_for(contact: ContactView, category: str) -> PreferenceView:
    """The contact's choice for a category, field by field: the category's own entry where it says something, else
    their `*` entry (the default for every category without its own), else nothing (the category's default)."""
    own = contact.preferences.get(category) or PreferenceView()
    general = contact.preferences.get(EVERY_CATEGORY) or PreferenceView()
    return PreferenceView(
        opted_in=own.opted_in if own.opted_in is not None else general.opted_in,
        channel=own.channel or general.channel,
    )


def consent_decision(contact: ContactView, category: str) -> Decision:
    """Opt-in/opt-out by category kind. Transactional and internal ignore opt-out; marketing also needs consent;
    service and marketing follow the contact's choice (`preference_for`), else the category's default."""
    kind, default_in = catalog.CATEGORIES[category]
    if kind in ("transactional", "internal"):
        return Decision(SEND)
    if kind == "marketing" and not contact.marketing_consent:
        return Decision(SUPPRESS, Reason("delivery.no_marketing_consent"))
    choice = preference_for(contact, category).opted_in
    if choice is None:
        choice = default_in
    if choice:
        return Decision(SEND)
    return Decision(SUPPRESS, Reason("delivery.opted_out" if kind == "marketing" else "delivery.not_subscribed", category=category))


def choose_channel(contact: ContactView, rule_channel: str, category: str) -> str | None:
    """The contact's channel choice for the category wins, then their general choice, then the rule's.

    Returns None when the contact has no address on any acceptable channel.
    """
    if rule_channel == "inbox":
        return "inbox"
    chosen = preference_for(contact, category).channel
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
        return Decision(SUPPRESS, Reason("delivery.cap_per_day", sent=sent_last_day, limit=per_day))
    if sent_last_week >= per_week:
        return Decision(SUPPRESS, Reason("delivery.cap_per_week", sent=sent_last_week, limit=per_week))
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
        return Decision(SUPPRESS, ERASED)
    if internal:
        return Decision(SEND)
    consent = consent_decision(contact, category)
    if consent.action != SEND:
        return consent
    if urgency == "critical":
        return Decision(SEND)
    until = quiet_hours_end(now, contact.timezone, contact.quiet_hours_start, contact.quiet_hours_end)
    if until is not None:
        return Decision(DEFER, Reason("delivery.quiet_hours"), until)
    return cap_decision(catalog.category_kind(category), sent_last_day, sent_last_week, per_day, per_week)
