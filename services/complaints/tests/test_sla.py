"""Business-hours arithmetic against a minute-by-minute oracle, over random calendars."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from complaints_support import oracle_deadline, oracle_is_business
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crm_complaints.complaints.sla import BusinessCalendar, CalendarError, SlaClock

UTC = dt.timezone.utc
ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]
# dates near DST transitions so they are hit often
SPECIAL_DAYS = [dt.date(2026, 3, 8), dt.date(2026, 3, 29), dt.date(2026, 4, 5), dt.date(2026, 10, 4),
                dt.date(2026, 10, 25), dt.date(2026, 11, 1), dt.date(2026, 2, 16), dt.date(2026, 10, 1)]


# ---- the oracle (complaints_support): written independently of the implementation ------------
def oracle_between(cal_data, a, b) -> int:
    count, t = 0, a
    while t < b:
        count += oracle_is_business(cal_data, t)
        t += dt.timedelta(minutes=1)
    return count


@st.composite
def calendars(draw):
    zone = draw(st.sampled_from(ZONES))
    weekdays = draw(st.frozensets(st.integers(0, 6), min_size=1))
    n = draw(st.integers(1, 3))
    points = sorted(draw(st.sets(st.integers(0, 1440), min_size=2 * n, max_size=2 * n)))
    periods = tuple((points[2 * i], points[2 * i + 1]) for i in range(n))
    base = draw(st.one_of(st.sampled_from(SPECIAL_DAYS), st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31))))
    near = st.integers(-3, 8).map(lambda k: base + dt.timedelta(days=k))
    holidays = draw(st.frozensets(near, max_size=3))
    workdays = draw(st.frozensets(near, max_size=2))
    cal_data = (zone, weekdays, periods, holidays, workdays)
    calendar = BusinessCalendar(timezone=zone, weekdays=weekdays, periods=periods, holidays=holidays, workdays=workdays)
    return calendar, cal_data, base


@st.composite
def instants(draw, base):
    minutes = draw(st.integers(-36 * 60, 4 * 24 * 60))
    return dt.datetime.combine(base, dt.time(), tzinfo=UTC) + dt.timedelta(minutes=minutes)


HYPO = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPO
@given(data=st.data())
def test_minutes_between_matches_oracle(data):
    calendar, cal_data, base = data.draw(calendars())
    a = data.draw(instants(base))
    length = data.draw(st.integers(0, 3 * 24 * 60))
    b = a + dt.timedelta(minutes=length)
    assert calendar.business_minutes_between(a, b) == oracle_between(cal_data, a, b)


@HYPO
@given(data=st.data())
def test_add_business_minutes_matches_oracle_and_round_trips(data):
    calendar, cal_data, base = data.draw(calendars())
    a = data.draw(instants(base))
    minutes = data.draw(st.integers(1, 900))
    expected = oracle_deadline(cal_data, a, minutes)
    assume(expected is not None)  # a calendar too sparse for the oracle's 40-day window
    deadline = calendar.add_business_minutes(a, minutes)
    assert deadline == expected
    assert calendar.business_minutes_between(a, deadline) == minutes


@HYPO
@given(data=st.data())
def test_paused_clock_deadline_matches_oracle(data):
    calendar, cal_data, base = data.draw(calendars())
    start = data.draw(instants(base))
    pause_after = data.draw(st.integers(0, 2 * 24 * 60))
    pause_length = data.draw(st.integers(0, 3 * 24 * 60))
    target = data.draw(st.integers(1, 600))
    pause_at = start + dt.timedelta(minutes=pause_after)
    resume_at = pause_at + dt.timedelta(minutes=pause_length)
    expected = oracle_deadline(cal_data, start, target, excluded=(pause_at, resume_at))
    assume(expected is not None)

    clock = SlaClock.start("resolution", target, start)
    if expected <= pause_at:
        # breached (or met) before the pause: the running deadline is the plain one
        assert clock.deadline(calendar) == expected
        return
    clock.pause(calendar, pause_at)
    assert clock.deadline(calendar) is None  # paused: no deadline
    clock.resume(resume_at)
    assert clock.deadline(calendar) == expected
    assert clock.elapsed(calendar, expected) == dt.timedelta(minutes=target)


# ---- worked examples -------------------------------------------------------------------------
SHANGHAI = BusinessCalendar(
    timezone="Asia/Shanghai",
    periods=((9 * 60, 12 * 60), (13 * 60, 18 * 60)),
    holidays=frozenset({dt.date(2026, 10, 1), dt.date(2026, 10, 2)}),
    workdays=frozenset({dt.date(2026, 10, 10)}),  # a Saturday made a working day
)


def sh(*args):
    return dt.datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_lunch_break_night_weekend_holiday_and_make_up_day():
    # Friday 17:30 + 60 min: 30 min Friday, skip the weekend, 09:30 Monday
    assert SHANGHAI.add_business_minutes(sh(2026, 9, 18, 17, 30), 60) == sh(2026, 9, 21, 9, 30).astimezone(UTC)
    # 11:30 + 60 min skips lunch: 13:30
    assert SHANGHAI.add_business_minutes(sh(2026, 9, 21, 11, 30), 60) == sh(2026, 9, 21, 13, 30).astimezone(UTC)
    # Wednesday 30 Sep 17:00 + 120 min: 60 min that day, 1 and 2 Oct are holidays, 3-4 weekend, Monday 5th 10:00
    assert SHANGHAI.add_business_minutes(sh(2026, 9, 30, 17, 0), 120) == sh(2026, 10, 5, 10, 0).astimezone(UTC)
    # Friday 9 Oct 17:00 + 120 min: Saturday 10th is a make-up working day
    assert SHANGHAI.add_business_minutes(sh(2026, 10, 9, 17, 0), 120) == sh(2026, 10, 10, 10, 0).astimezone(UTC)
    # a deadline that ends exactly at the lunch break is 12:00, not 13:00
    assert SHANGHAI.add_business_minutes(sh(2026, 9, 21, 11, 0), 60) == sh(2026, 9, 21, 12, 0).astimezone(UTC)
    assert SHANGHAI.business_minutes_between(sh(2026, 9, 18, 8, 0), sh(2026, 9, 21, 23, 0)) == 16 * 60


def test_start_outside_hours_counts_from_next_opening():
    assert SHANGHAI.add_business_minutes(sh(2026, 9, 21, 3, 0), 1) == sh(2026, 9, 21, 9, 1).astimezone(UTC)
    assert SHANGHAI.add_business_minutes(sh(2026, 9, 21, 12, 20), 10) == sh(2026, 9, 21, 13, 10).astimezone(UTC)


def test_dst_spring_forward_period_is_shorter():
    ny = BusinessCalendar(timezone="America/New_York", weekdays=frozenset(range(7)), periods=((60, 4 * 60),))
    day = dt.date(2026, 3, 8)  # 02:00 -> 03:00
    start, end = ny.intervals_on(day)[0]
    assert end - start == dt.timedelta(hours=2)


def test_first_response_clock_never_restarts_resolution_clock_resumes():
    start = sh(2026, 9, 21, 9, 0)
    first = SlaClock.start("first_response", 60, start)
    first.stop(SHANGHAI, sh(2026, 9, 21, 9, 20))
    assert first.restart(sh(2026, 9, 22, 9, 0)) is False
    assert first.deadline(SHANGHAI) is None
    assert first.elapsed(SHANGHAI, sh(2026, 9, 30, 9, 0)) == dt.timedelta(minutes=20)

    resolution = SlaClock.start("resolution", 240, start)
    resolution.stop(SHANGHAI, sh(2026, 9, 21, 11, 0))  # resolved after 120 business minutes
    assert resolution.restart(sh(2026, 9, 23, 14, 0)) is True  # reopened
    assert resolution.deadline(SHANGHAI) == sh(2026, 9, 23, 16, 0).astimezone(UTC)


def test_escalation_thresholds():
    clock = SlaClock.start("resolution", 100, sh(2026, 9, 21, 9, 0))
    assert clock.escalation_due(SHANGHAI, 1) == sh(2026, 9, 21, 10, 20).astimezone(UTC)
    assert clock.escalation_due(SHANGHAI, 2) == sh(2026, 9, 21, 10, 40).astimezone(UTC)
    assert clock.escalation_due(SHANGHAI, 3) == sh(2026, 9, 21, 11, 30).astimezone(UTC)
    assert clock.escalation_due(SHANGHAI, 4) is None


def test_bad_calendars_are_rejected():
    with pytest.raises(CalendarError):
        BusinessCalendar(periods=((600, 500),))
    with pytest.raises(CalendarError):
        BusinessCalendar(periods=((0, 600), (500, 700)))
    never = BusinessCalendar(weekdays=frozenset())
    with pytest.raises(CalendarError):
        never.add_business_minutes(dt.datetime(2026, 1, 1, tzinfo=UTC), 5)


def test_calendar_round_trips_through_its_data_form():
    assert BusinessCalendar.from_dict(SHANGHAI.to_dict()) == SHANGHAI


def test_deadline_used_up_before_a_pause_stays_put():
    start = sh(2026, 9, 21, 9, 0)
    clock = SlaClock.start("resolution", 60, start)
    clock.pause(SHANGHAI, sh(2026, 9, 21, 11, 0))  # 120 minutes used: breached at 10:00
    clock.resume(sh(2026, 9, 22, 9, 0))
    assert clock.deadline(SHANGHAI) == sh(2026, 9, 21, 10, 0).astimezone(UTC)
    assert clock.escalation_due(SHANGHAI, 3) == sh(2026, 9, 22, 9, 0).astimezone(UTC)  # past due: due on resume
