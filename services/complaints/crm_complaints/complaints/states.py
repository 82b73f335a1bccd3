"""The complaint state machine. A move it does not allow raises TransitionNotAllowed (ReopenWindowPassed for a late reopen)."""

from __future__ import annotations

import datetime as dt

from crm_complaints.complaints.errors import InvalidComplaintInput, ReopenWindowPassed, TransitionNotAllowed

STATES = ("new", "assigned", "in_progress", "waiting_on_customer", "resolved", "closed")
OPEN_STATES = frozenset({"new", "assigned", "in_progress", "waiting_on_customer"})

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"assigned", "closed"}),  # closed only through a merge
    "assigned": frozenset({"assigned", "in_progress", "waiting_on_customer", "resolved", "closed"}),
    "in_progress": frozenset({"assigned", "waiting_on_customer", "resolved", "closed"}),
    "waiting_on_customer": frozenset({"assigned", "in_progress", "resolved", "closed"}),
    "resolved": frozenset({"closed", "in_progress"}),  # in_progress = reopen
    "closed": frozenset({"in_progress"}),  # reopen within the window
}

# What an agent may set through the plain status endpoint (others have their own action).
MANUAL_TARGETS = frozenset({"in_progress", "waiting_on_customer"})

DEFAULT_REOPEN_DAYS = 14


def check_transition(current: str, target: str) -> None:
    if target not in STATES:
        raise InvalidComplaintInput(f"{target!r} is not a status.", title="Unknown status", allowed=list(STATES))
    if target not in TRANSITIONS[current]:
        raise TransitionNotAllowed(
            f"A complaint in status {current!r} cannot move to {target!r}.", current_status=current, allowed=sorted(TRANSITIONS[current])
        )


def check_reopen(current: str, resolved_at: dt.datetime | None, now: dt.datetime, window_days: int) -> None:
    if current not in ("resolved", "closed") or resolved_at is None:
        raise TransitionNotAllowed(f"A complaint in status {current!r} cannot be reopened.", current_status=current)
    if now - resolved_at > dt.timedelta(days=window_days):
        raise ReopenWindowPassed(
            f"Complaints can be reopened within {window_days} days of resolution.",
            current_status=current,
            resolved_at=resolved_at.isoformat(),
        )


CUSTOMER_STATUS: dict[str, dict[str, str]] = {
    "new": {"en": "We have received your complaint", "zh-CN": "我们已收到您的投诉"},
    "assigned": {"en": "A specialist has been assigned to your complaint", "zh-CN": "已安排专人处理您的投诉"},
    "in_progress": {"en": "We are working on your complaint", "zh-CN": "您的投诉正在处理中"},
    "waiting_on_customer": {"en": "We are waiting for information from you", "zh-CN": "等待您补充信息"},
    "resolved": {"en": "Your complaint has been resolved", "zh-CN": "您的投诉已处理完毕"},
    "closed": {"en": "Your complaint is closed", "zh-CN": "您的投诉已结案"},
}


def customer_status(status: str, language: str = "zh-CN") -> str:
    words = CUSTOMER_STATUS[status]
    return words.get(language, words["en"])
