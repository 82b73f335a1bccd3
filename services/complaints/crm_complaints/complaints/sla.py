"""Business-hours calendars and SLA clocks.

A calendar says which instants are business time for a team: a local date is a working day when
it is a make-up working day, or its weekday is a working weekday and it is not a holiday; on a
working day the instants whose local wall time lies in one of the periods ([start, end) in minutes
of the day, e.g. 09:00-12:00 and 13:00-18:00) are business time. Local time comes from the
calendar's IANA time zone, DST transitions included: an instant is business time exactly when its
local wall time is, so a period spanning a spring-forward gap is shorter and one spanning a
fall-back overlap is longer.

Clocks count business time from a start, can be paused (waiting on the customer) and stopped.
All datetimes here are aware; results are UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
MINUTES_PER_DAY = 24 * 60
_MAX_SEARCH_DAYS = 3 * 366


class CalendarError(ValueError):
    """A calendar that cannot be used (bad periods, or no business time at all).

    `loc` is where in the calendar's data form the fault is, e.g. ("periods", 1, 0).
    """

    def __init__(self, message: str, loc: Loc = ()):
        super().__init__(message)
        self.loc = loc


# where in a calendar's data form a fault is, e.g. ("periods", 1, 0)
Loc = tuple[str | int, ...]

_TIME_OF_DAY = re.compile(r"(\d{2}):(\d{2})")


def time_text(minute: int) -> str:
    """A minute of the day as HH:MM (1440 is 24:00, the end of the day)."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def minute_of_day(text: str, loc: Loc = ()) -> int:
    """HH:MM (hours 00-24, minutes 00-59; 24:00 is the end of the day) as minutes after midnight."""
    match = _TIME_OF_DAY.fullmatch(str(text))
    if match is None:
        raise CalendarError(f"{text!r} is not a time of day written HH:MM", loc)
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise CalendarError(f"{text} is not a time of day: hours are 00-24, minutes 00-59, and 24:00 is the latest", loc)
    return hours * 60 + minutes


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str = "Asia/Shanghai"
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    periods: tuple[tuple[int, int], ...] = ((9 * 60, 12 * 60), (13 * 60, 18 * 60))  # minutes of the day
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()  # make-up working days (调休), even on a weekend

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(f"unknown time zone {self.timezone!r}; give an IANA name such as Asia/Shanghai", ("timezone",)) from exc
        if any(d not in range(7) for d in self.weekdays):
            raise CalendarError("weekdays are 0 (Monday) .. 6 (Sunday)", ("weekdays",))
        periods = tuple((int(s), int(e)) for s, e in self.periods)
        for index, (start, end) in enumerate(periods):
            _check_period(start, end, ("periods", index))
        ordered = tuple(sorted(periods))
        for (start, end), (next_start, next_end) in zip(ordered, ordered[1:]):
            if next_start < end:
                raise CalendarError(
                    f"periods {time_text(start)}-{time_text(end)} and {time_text(next_start)}-{time_text(next_end)} overlap", ("periods",)
                )
        object.__setattr__(self, "periods", ordered)
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))

    # ---- data form (stored per team as JSON) -------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BusinessCalendar:
        return cls(
            timezone=data.get("timezone", "Asia/Shanghai"),
            weekdays=frozenset(int(d) for d in data.get("weekdays", [0, 1, 2, 3, 4])),
            periods=_periods_from_data(data.get("periods", [["09:00", "12:00"], ["13:00", "18:00"]])),
            holidays=frozenset(dt.date.fromisoformat(d) for d in data.get("holidays", [])),
            workdays=frozenset(dt.date.fromisoformat(d) for d in data.get("workdays", [])),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "weekdays": sorted(self.weekdays),
            "periods": [[time_text(s), time_text(e)] for s, e in self.periods],
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "workdays": sorted(d.isoformat() for d in self.workdays),
        }

    # ---- queries -----------------------------------------------------------------------------
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def intervals_on(self, day: dt.date) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
        """The UTC intervals of business time whose local date is `day`, in order."""
        return _intervals_on(self, day)

    def intervals(self, start: dt.datetime) -> Iterable[tuple[dt.datetime, dt.datetime]]:
        """Business intervals ending after `start`, in time order, clipped to begin at `start` or later."""
        start = _aware(start).astimezone(UTC)
        day = start.astimezone(self.zone).date() - dt.timedelta(days=1)
        empty_days = 0
        while True:
            found = _intervals_on(self, day)
            if found:
                empty_days = 0
            else:
                empty_days += 1
                if empty_days > _MAX_SEARCH_DAYS:
                    raise CalendarError("calendar has no business time")
            for begin, end in found:
                if end > start:
                    yield (max(begin, start), end)
            day += dt.timedelta(days=1)

    def add_business_time(self, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
        """The instant when `amount` of business time has elapsed since `start` (UTC)."""
        start = _aware(start).astimezone(UTC)
        if amount < dt.timedelta(0):
            raise ValueError("amount must not be negative")
        if amount == dt.timedelta(0):
            return start
        remaining = amount
        for begin, end in self.intervals(start):
            available = end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover

    def add_business_minutes(self, start: dt.datetime, minutes: float) -> dt.datetime:
        return self.add_business_time(start, dt.timedelta(minutes=minutes))

    def business_time_between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        """Business time in [a, b); zero when b <= a."""
        a = _aware(a).astimezone(UTC)
        b = _aware(b).astimezone(UTC)
        total = dt.timedelta(0)
        if b <= a:
            return total
        for begin, end in self.intervals(a):
            if begin >= b:
                break
            total += min(end, b) - begin
        return total

    def business_minutes_between(self, a: dt.datetime, b: dt.datetime) -> int:
        """Whole business minutes in [a, b) (floor)."""
        return int(self.business_time_between(a, b).total_seconds() // 60)


def _periods_from_data(data: object) -> tuple[tuple[int, int], ...]:
    if not isinstance(data, (list, tuple)):
        raise CalendarError("periods are a list of [start, end] pairs written HH:MM", ("periods",))
    periods: list[tuple[int, int]] = []
    for index, period in enumerate(data):
        if not isinstance(period, (list, tuple)) or len(period) != 2:
            raise CalendarError(f"period {period!r} is not a [start, end] pair written HH:MM", ("periods", index))
        periods.append((minute_of_day(period[0], ("periods", index, 0)), minute_of_day(period[1], ("periods", index, 1))))
    return tuple(periods)


def _check_period(start: int, end: int, loc: Loc) -> None:
    if not (0 <= start <= MINUTES_PER_DAY and 0 <= end <= MINUTES_PER_DAY):
        raise CalendarError(f"period {start}-{end} (minutes of the day) lies outside 00:00-24:00", loc)
    if end == start:
        raise CalendarError(f"period {time_text(start)}-{time_text(end)} is empty", loc)
    if end < start:
        raise CalendarError(
            f"period {time_text(start)}-{time_text(end)} crosses midnight; a period lies within one day: "
            f"split it into {time_text(start)}-24:00 and 00:00-{time_text(end)}",
            loc,
        )


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime; give an aware one")
    return value


def _known_offset(moment: dt.datetime) -> dt.timedelta:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("naive datetime; give an aware one")
    return offset


def _offset(zone: ZoneInfo, instant: dt.datetime) -> dt.timedelta:
    return _known_offset(instant.astimezone(zone))


def _transition(zone: ZoneInfo, a: dt.datetime, b: dt.datetime) -> dt.datetime:
    """First instant in (a, b] whose offset differs from a's (bisection to the second)."""
    first = _offset(zone, a)
    lo, hi = a, b
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid <= lo:
            mid = lo + dt.timedelta(seconds=1)
        if _offset(zone, mid) == first:
            lo = mid
        else:
            hi = mid
    return hi


@lru_cache(maxsize=8192)
def _intervals_on(calendar: BusinessCalendar, day: dt.date) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
    if not calendar.is_working_day(day) or not calendar.periods:
        return ()
    zone = calendar.zone
    midnight = dt.datetime.combine(day, dt.time())
    # every offset in force around this local day (at most one transition a day in real zones)
    offsets = {
        _known_offset(dt.datetime.combine(day + dt.timedelta(days=delta), dt.time(hour), tzinfo=zone))
        for delta in (-1, 0, 1)
        for hour in (0, 6, 12, 18)
    }
    result: list[tuple[dt.datetime, dt.datetime]] = []
    for start_min, end_min in calendar.periods:
        for offset in offsets:
            begin = (midnight + dt.timedelta(minutes=start_min) - offset).replace(tzinfo=UTC)
            end = (midnight + dt.timedelta(minutes=end_min) - offset).replace(tzinfo=UTC)
            # keep the part of [begin, end) where the zone's real offset is `offset`
            at_begin = _offset(zone, begin) == offset
            last = end - dt.timedelta(seconds=1)
            at_end = _offset(zone, last) == offset
            if at_begin and at_end:
                if _offset(zone, begin + (end - begin) / 2) == offset:
                    result.append((begin, end))
                else:  # left and came back: two transitions inside (not seen in real zones)
                    cut_out = _transition(zone, begin, end)
                    cut_in = _transition(zone, cut_out, end)
                    result.append((begin, cut_out))
                    result.append((cut_in, end))
            elif at_begin:
                result.append((begin, _transition(zone, begin, last)))
            elif at_end:
                result.append((_transition(zone, begin, last), end))
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for begin, end in sorted(iv for iv in result if iv[1] > iv[0]):
        if merged and begin <= merged[-1][1]:  # pieces of one period split at a transition
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return tuple(merged)


# ---- SLA clocks ------------------------------------------------------------------------------

ClockKind = Literal["first_response", "resolution"]

# Escalation thresholds as fractions of the target: level 1 (team lead) near breach,
# level 2 (manager) at breach, level 3 (head of service) well past breach.
ESCALATION_THRESHOLDS: dict[int, float] = {1: 0.8, 2: 1.0, 3: 1.5}
ESCALATION_TARGETS: dict[int, str] = {1: "team_lead", 2: "manager", 3: "head_of_service"}


@dataclass(frozen=True)
class Stretch:
    """A finished stretch of counting: [began, ended) counted `counted` business time in `calendar`."""

    began: dt.datetime
    ended: dt.datetime
    counted: dt.timedelta
    calendar: BusinessCalendar

    def to_dict(self) -> dict[str, Any]:
        return {
            "began": self.began.isoformat(),
            "ended": self.ended.isoformat(),
            "counted_us": self.counted // dt.timedelta(microseconds=1),
            "calendar": self.calendar.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stretch:
        return cls(
            began=dt.datetime.fromisoformat(data["began"]),
            ended=dt.datetime.fromisoformat(data["ended"]),
            counted=dt.timedelta(microseconds=data["counted_us"]),
            calendar=BusinessCalendar.from_dict(data["calendar"]),
        )


@dataclass
class SlaClock:
    """A countdown of business time. Pure state; the storage layer persists these fields.

    running_since: when it last (re)started counting; None while paused or stopped.
    consumed: business time counted before running_since.
    history: the finished stretches that make up `consumed`, so that the instant any target was used up can be
        found again after the target changes; None for a clock stored before stretches were kept (unknown).
    """

    kind: ClockKind
    target_minutes: int
    consumed: dt.timedelta = field(default_factory=dt.timedelta)
    running_since: dt.datetime | None = None
    paused: bool = False
    stopped_at: dt.datetime | None = None
    restartable: bool = True
    breached_at: dt.datetime | None = None  # when the target was used up, once known
    history: tuple[Stretch, ...] | None = ()

    @classmethod
    def start(cls, kind: ClockKind, target_minutes: int, at: dt.datetime) -> SlaClock:
        return cls(kind=kind, target_minutes=target_minutes, running_since=_aware(at).astimezone(UTC), restartable=kind == "resolution")

    @property
    def running(self) -> bool:
        return self.running_since is not None

    @property
    def target(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.target_minutes)

    def elapsed(self, calendar: BusinessCalendar, now: dt.datetime) -> dt.timedelta:
        if self.running_since is None:
            return self.consumed
        return self.consumed + calendar.business_time_between(self.running_since, now)

    def _fold(self, calendar: BusinessCalendar, now: dt.datetime) -> None:
        if self.running_since is not None:
            now = _aware(now).astimezone(UTC)
            counted = calendar.business_time_between(self.running_since, now)
            if self.history is None:
                self._fold_without_history(calendar, self.running_since, counted)
            elif counted:
                self.history += (Stretch(self.running_since, now, counted, calendar),)
            self.consumed += counted
            self.running_since = None
            if self.breached_at is None:
                self.breached_at = self._used_up_before_running()

    def _fold_without_history(self, calendar: BusinessCalendar, began: dt.datetime, counted: dt.timedelta) -> None:
        # the one instant an unknown history still allows: the target crossed inside this stretch
        if self.breached_at is None and self.consumed < self.target <= self.consumed + counted:
            self.breached_at = calendar.add_business_time(began, self.target - self.consumed)

    def _used_up_before_running(self) -> dt.datetime | None:
        """When the target was used up in the finished stretches; None if it was not (or the history is unknown)."""
        if self.history is None:
            return self.breached_at if self.consumed >= self.target else None
        left = self.target
        for stretch in self.history:
            if left <= stretch.counted:
                return stretch.calendar.add_business_time(stretch.began, left)
            left -= stretch.counted
        return None

    def used_up_at(self, calendar: BusinessCalendar) -> dt.datetime | None:
        """When the target is (or was) used up, counting business time only while running; None if that is not
        known yet (paused or stopped short of the target)."""
        before = self._used_up_before_running()
        if before is not None or self.running_since is None:
            return before
        return calendar.add_business_time(self.running_since, max(self.target - self.consumed, dt.timedelta(0)))

    def pause(self, calendar: BusinessCalendar, now: dt.datetime) -> None:
        if self.running_since is not None:
            self._fold(calendar, now)
            self.paused = True

    def resume(self, now: dt.datetime) -> None:
        if self.paused and self.stopped_at is None:
            self.paused = False
            self.running_since = _aware(now).astimezone(UTC)

    def stop(self, calendar: BusinessCalendar, now: dt.datetime) -> None:
        if self.stopped_at is None:
            self._fold(calendar, now)
            self.paused = False
            self.stopped_at = _aware(now).astimezone(UTC)

    def restart(self, now: dt.datetime) -> bool:
        """Resume a stopped clock (resolution clock on reopen). The first-response clock never restarts."""
        if not self.restartable or self.stopped_at is None:
            return False
        self.stopped_at = None
        self.paused = False
        self.running_since = _aware(now).astimezone(UTC)
        return True

    def retarget(self, target_minutes: int, calendar: BusinessCalendar, now: dt.datetime) -> None:
        """Take a new target (a priority change), keeping the time already used. The breach instant is found again
        for the new target: set, moved or cleared."""
        self.target_minutes = target_minutes
        used_up = self.used_up_at(calendar)
        self.breached_at = used_up if used_up is not None and used_up <= _aware(now) else None

    def due_at(self, calendar: BusinessCalendar, fraction: float = 1.0) -> dt.datetime | None:
        """When `fraction` of the target will have elapsed, if the clock keeps running; None unless running."""
        if self.running_since is None:
            return None
        left = dt.timedelta(minutes=self.target_minutes * fraction) - self.consumed
        if left <= dt.timedelta(0):
            return self.running_since
        return calendar.add_business_time(self.running_since, left)

    def deadline(self, calendar: BusinessCalendar) -> dt.datetime | None:
        """When the target is (or was) used up, while the clock runs; None while paused or stopped."""
        return self.used_up_at(calendar) if self.running_since is not None else None

    def within_target(self, calendar: BusinessCalendar, now: dt.datetime) -> bool:
        return self.elapsed(calendar, now) <= self.target

    def escalation_due(self, calendar: BusinessCalendar, level: int) -> dt.datetime | None:
        """When escalation `level` (1..3) falls due; None when paused/stopped or beyond level 3."""
        if level not in ESCALATION_THRESHOLDS:
            return None
        return self.due_at(calendar, ESCALATION_THRESHOLDS[level])

    def copy(self) -> SlaClock:
        return replace(self)


# Targets in business minutes per priority: (first response, resolution).
DEFAULT_TARGETS: dict[str, tuple[int, int]] = {
    "P1": (30, 4 * 60),
    "P2": (60, 8 * 60),
    "P3": (4 * 60, 16 * 60),
    "P4": (8 * 60, 40 * 60),
}
