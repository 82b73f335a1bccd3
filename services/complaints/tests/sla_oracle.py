"""Minute-by-minute oracles for business time and SLA clocks, written independently of crm_complaints (test-only).

A calendar here is plain data: (IANA zone name, working weekdays, [(start_min, end_min)], holidays, make-up workdays).
A minute [t, t + 1 min) is business time when its local date (in the zone) is a working day and its local wall
time lies in one of the periods. The walks below step through UTC minutes and count those.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

MINUTE = dt.timedelta(minutes=1)


def oracle_is_business(cal_data, minute_utc: dt.datetime) -> bool:
    zone, weekdays, periods, holidays, workdays = cal_data
    local = minute_utc.astimezone(ZoneInfo(zone))
    day = local.date()
    working = day in workdays or (day.weekday() in weekdays and day not in holidays)
    if not working:
        return False
    m = local.hour * 60 + local.minute
    return any(s <= m < e for s, e in periods)


def oracle_between(cal_data, a: dt.datetime, b: dt.datetime) -> int:
    """Business minutes in [a, b)."""
    count, t = 0, a
    while t < b:
        count += oracle_is_business(cal_data, t)
        t += MINUTE
    return count


def oracle_deadline(cal_data, start: dt.datetime, minutes: int, excluded=None, limit_days: int = 40):
    """The end of the `minutes`-th business minute from `start`, skipping minutes in [excluded[0], excluded[1])."""
    switches = [] if excluded is None else list(excluded)
    return oracle_clock_used_up(cal_data, start, switches, minutes, limit_days)


def oracle_clock_used_up(cal_data, start: dt.datetime, switches, minutes: int, limit_days: int = 40):
    """A clock started at `start` that flips between running and paused at each instant of `switches` (sorted;
    the first one pauses it): the end of the `minutes`-th business minute it counted while running, or None when
    it never gets there within `limit_days` (e.g. it stays paused)."""
    t, counted, flips = start, 0, 0
    end = start + dt.timedelta(days=limit_days)
    while t < end:
        while flips < len(switches) and switches[flips] <= t:
            flips += 1
        running = flips % 2 == 0
        if running and oracle_is_business(cal_data, t):
            counted += 1
            if counted == minutes:
                return t + MINUTE
        t += MINUTE
    return None
