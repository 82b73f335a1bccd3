"""An independent oracle of quiet hours for the tests: walk the clock minute by minute.

Shares nothing with `crm_notifications.preferences.policy`: it reads the local wall clock of each UTC minute and
answers with the first one outside the window [start, end). Quiet hours and the offsets of the zones the tests use
are whole minutes, so the end of a quiet period always falls on a whole UTC minute."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

MINUTE = dt.timedelta(minutes=1)


def _minutes(value: dt.time) -> float:
    return value.hour * 60 + value.minute + value.second / 60 + value.microsecond / 60e6


def quiet_at(instant: dt.datetime, timezone: str, start: dt.time, end: dt.time) -> bool:
    clock, begin, finish = _minutes(instant.astimezone(ZoneInfo(timezone)).time()), _minutes(start), _minutes(end)
    if begin == finish:
        return False
    if begin < finish:
        return begin <= clock < finish
    return clock >= begin or clock < finish


def walked_quiet_end(now: dt.datetime, timezone: str, start: dt.time, end: dt.time, *, horizon_days: int = 3) -> dt.datetime | None:
    """None when `now` is not quiet; else the first whole UTC minute after `now` that is not."""
    if not quiet_at(now, timezone, start, end):
        return None
    instant = now.astimezone(dt.UTC).replace(second=0, microsecond=0) + MINUTE
    for _ in range(horizon_days * 24 * 60):
        if not quiet_at(instant, timezone, start, end):
            return instant
        instant += MINUTE
    raise AssertionError(f"still quiet {horizon_days} days after {now}")
