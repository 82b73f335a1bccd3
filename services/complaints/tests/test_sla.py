"""Business-hours arithmetic against a minute-by-minute oracle, over random calendars."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crm_complaints.complaints.sla import BusinessCalendar, CalendarError, SlaClock, Stretch
from sla_oracle import oracle_between, oracle_clock_used_up, oracle_deadline  # written independently of sla.py

UTC = dt.UTC
ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]
# dates near DST transitions so they are hit often
SPECIAL_DAYS = [
    dt.date(2026, 3, 8),
    dt.date(2026, 3, 29),
    dt.date(2026, 4, 5),
    dt.date(2026, 10, 4),
    dt.date(2026, 10, 25),
    dt.date(2026, 11, 1),
    dt.date(2026, 2, 16),
    dt.date(2026, 10, 1),
]


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


# ---- a target changed on a clock that has paused (issue 27) ------------------------------------
@st.composite
def clock_histories(draw, base):
    """A start, then up to six steps: pause or resume (toggling), or a new target; ends with a new target."""
    start = draw(instants(base))
    steps, at, running = [], start, True
    for _ in range(draw(st.integers(0, 6))):
        at += dt.timedelta(minutes=draw(st.integers(0, 2 * 24 * 60)))
        if draw(st.booleans()):
            steps.append((at, "pause" if running else "resume", None))
            running = not running
        else:
            steps.append((at, "retarget", draw(st.integers(1, 900))))
    at += dt.timedelta(minutes=draw(st.integers(0, 24 * 60)))
    steps.append((at, "retarget", draw(st.integers(1, 900))))
    return start, draw(st.integers(1, 900)), steps


@HYPO
@given(data=st.data())
def test_deadline_and_breach_after_a_target_change_match_the_minute_walk(data):
    calendar, cal_data, base = data.draw(calendars())
    start, first_target, steps = data.draw(clock_histories(base))
    clock = SlaClock.start("resolution", first_target, start)
    for at, action, target in steps:
        if action == "pause":
            clock.pause(calendar, at)
        elif action == "resume":
            clock.resume(at)
        else:
            clock.retarget(target, calendar, at)
    now, _, final_target = steps[-1]
    switches = [at for at, action, _ in steps if action in ("pause", "resume")]
    used_up = oracle_clock_used_up(cal_data, start, switches, final_target, limit_days=60)
    assume(used_up is not None or not clock.running)  # a calendar too sparse for the oracle's window

    assert clock.deadline(calendar) == (used_up if clock.running else None)
    assert clock.breached_at == (used_up if used_up is not None and used_up <= now else None)


SHANGHAI_LONG_LUNCH = BusinessCalendar(timezone="Asia/Shanghai", periods=((9 * 60, 12 * 60), (13 * 60 + 30, 18 * 60)))


def test_new_target_already_used_before_a_pause_is_the_instant_it_was_used_up():
    clock = SlaClock.start("first_response", 480, sh(2026, 6, 1, 9, 0))  # P4
    clock.pause(SHANGHAI_LONG_LUNCH, sh(2026, 6, 1, 17, 0))  # 180 + 210 = 390 minutes used
    clock.resume(sh(2026, 6, 2, 10, 0))
    clock.retarget(240, SHANGHAI_LONG_LUNCH, sh(2026, 6, 2, 10, 0))  # P3
    assert clock.deadline(SHANGHAI_LONG_LUNCH) == sh(2026, 6, 1, 14, 30).astimezone(UTC)  # 180 in the morning + 60
    assert clock.breached_at == sh(2026, 6, 1, 14, 30).astimezone(UTC)


def test_old_target_ran_out_then_a_lower_target_moves_the_breach_back():
    clock = SlaClock.start("resolution", 2400, sh(2026, 6, 1, 9, 0))
    clock.pause(SHANGHAI_LONG_LUNCH, sh(2026, 6, 8, 12, 0))
    assert clock.breached_at == sh(2026, 6, 8, 11, 30).astimezone(UTC)  # 5 x 450 + 150
    clock.resume(sh(2026, 6, 9, 9, 0))
    clock.retarget(960, SHANGHAI_LONG_LUNCH, sh(2026, 6, 9, 9, 0))
    assert clock.deadline(SHANGHAI_LONG_LUNCH) == sh(2026, 6, 3, 10, 0).astimezone(UTC)  # 2 x 450 + 60
    assert clock.breached_at == sh(2026, 6, 3, 10, 0).astimezone(UTC)


def test_a_higher_target_clears_the_breach_and_counts_on_from_the_resume():
    clock = SlaClock.start("resolution", 240, sh(2026, 6, 1, 9, 0))
    clock.pause(SHANGHAI_LONG_LUNCH, sh(2026, 6, 1, 17, 0))  # 390 used: breached at 14:30
    clock.resume(sh(2026, 6, 2, 10, 0))
    clock.retarget(480, SHANGHAI_LONG_LUNCH, sh(2026, 6, 2, 10, 0))
    assert clock.breached_at is None
    assert clock.deadline(SHANGHAI_LONG_LUNCH) == sh(2026, 6, 2, 11, 30).astimezone(UTC)  # 90 more from 10:00


def test_stretches_round_trip_through_their_data_form():
    clock = SlaClock.start("resolution", 2400, sh(2026, 6, 1, 9, 0))
    clock.pause(SHANGHAI_LONG_LUNCH, sh(2026, 6, 1, 17, 0))
    (stretch,) = clock.history
    assert Stretch.from_dict(stretch.to_dict()) == stretch
    assert stretch.counted == dt.timedelta(minutes=390)


# ---- calendar periods are times of day, HH:MM --------------------------------------------------
@pytest.mark.parametrize(
    "start, end, message",
    [
        ("12:75", "13:00", "12:75 is not a time of day"),
        ("09:00", "24:30", "24:30 is not a time of day"),
        ("25:00", "26:00", "25:00 is not a time of day"),
        ("9:00", "12:00", "'9:00' is not a time of day written HH:MM"),
        ("noon", "13:00", "'noon' is not a time of day written HH:MM"),
        ("22:00", "06:00", "period 22:00-06:00 crosses midnight"),
        ("10:00", "10:00", "period 10:00-10:00 is empty"),
    ],
)
def test_periods_are_validated_as_times_of_day_and_errors_name_them_so(start, end, message):
    with pytest.raises(CalendarError, match=message) as caught:
        BusinessCalendar.from_dict({"periods": [["08:00", "08:30"], [start, end]]})
    assert caught.value.loc[:2] == ("periods", 1)


def test_overlapping_periods_are_named_by_their_times():
    with pytest.raises(CalendarError, match="periods 09:00-12:00 and 11:30-13:00 overlap"):
        BusinessCalendar.from_dict({"periods": [["11:30", "13:00"], ["09:00", "12:00"]]})


def test_a_period_may_end_at_24_00():
    calendar = BusinessCalendar.from_dict({"periods": [["00:00", "24:00"]]})
    assert calendar.periods == ((0, 1440),) and calendar.to_dict()["periods"] == [["00:00", "24:00"]]
