"""Quiet hours across the 2026 clock changes: the two cases of issue 28 to the instant, and a property test against a
minute-walk oracle (quiet_hours_oracle) in three zones."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crm_notifications.preferences.policy import quiet_hours_end
from quiet_hours_oracle import walked_quiet_end

UTC = dt.UTC


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# the instants the clocks change in 2026 (tz database), checked against zoneinfo below
CLOCK_CHANGES = {
    "America/New_York": [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)],  # 02:00 EST -> 03:00 EDT; 02:00 EDT -> 01:00 EST
    "Europe/Berlin": [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)],  # 02:00 CET -> 03:00 CEST; 03:00 CEST -> 02:00 CET
    "Australia/Sydney": [utc(2026, 4, 4, 16), utc(2026, 10, 3, 16)],  # 03:00 AEDT -> 02:00 AEST; 02:00 AEST -> 03:00 AEDT
}


@pytest.mark.parametrize("zone, change", [(z, c) for z, changes in CLOCK_CHANGES.items() for c in changes])
def test_the_clock_changes_used_are_real(zone, change):
    before = (change - dt.timedelta(seconds=1)).astimezone(ZoneInfo(zone)).utcoffset()
    assert change.astimezone(ZoneInfo(zone)).utcoffset() != before


def test_quiet_hours_ending_in_the_repeated_hour_end_in_the_second_pass():
    # New York, quiet 22:00-01:30; 06:10Z on 1 November is 01:10 EST, the second 01:xx: the clock reads 01:30 again at 06:30Z
    end = quiet_hours_end(utc(2026, 11, 1, 6, 10), "America/New_York", dt.time(22, 0), dt.time(1, 30))
    assert end == utc(2026, 11, 1, 6, 30)
    # in the first 01:xx (EDT) the same window ends at 01:30 EDT
    assert quiet_hours_end(utc(2026, 11, 1, 5, 10), "America/New_York", dt.time(22, 0), dt.time(1, 30)) == utc(2026, 11, 1, 5, 30)


def test_quiet_hours_ending_in_the_skipped_hour_end_when_the_clock_jumps_past_the_end():
    # Berlin, quiet 22:00-02:30; on 29 March the clock jumps from 02:00 to 03:00 at 01:00Z: past 02:30 from then on
    end = quiet_hours_end(utc(2026, 3, 28, 22, 0), "Europe/Berlin", dt.time(22, 0), dt.time(2, 30))
    assert end == utc(2026, 3, 29, 1, 0)


def test_a_clock_thrown_back_before_the_start_ends_the_quiet_period():
    # New York, quiet 01:30-03:00: at 06:00Z on 1 November the clock goes from 02:00 EDT back to 01:00 EST, out of the window
    assert quiet_hours_end(utc(2026, 11, 1, 5, 45), "America/New_York", dt.time(1, 30), dt.time(3, 0)) == utc(2026, 11, 1, 6, 0)
    # and back in at 01:30 EST (06:30Z), until 03:00 EST
    assert quiet_hours_end(utc(2026, 11, 1, 6, 30), "America/New_York", dt.time(1, 30), dt.time(3, 0)) == utc(2026, 11, 1, 8, 0)


def test_a_clock_thrown_back_inside_the_window_keeps_it_quiet_to_its_end():
    # New York, quiet 00:30-03:00: 01:50 EDT -> back to 01:00 EST -> quiet until 03:00 EST
    assert quiet_hours_end(utc(2026, 11, 1, 5, 50), "America/New_York", dt.time(0, 30), dt.time(3, 0)) == utc(2026, 11, 1, 8, 0)


minute_of_day = st.integers(0, 24 * 60 - 1)
near_the_change = st.integers(60, 4 * 60)  # 01:00-04:00 local, where the 2026 changes happen
clock_times = st.one_of(minute_of_day, near_the_change).map(lambda m: dt.time(m // 60, m % 60))


@st.composite
def moments_near_a_clock_change(draw):
    zone = draw(st.sampled_from(sorted(CLOCK_CHANGES)))
    change = draw(st.sampled_from(CLOCK_CHANGES[zone]))
    seconds = draw(st.one_of(st.integers(-36 * 3600, 36 * 3600), st.integers(-4 * 3600, 4 * 3600)))
    micro = draw(st.sampled_from([0, 0, 1, 500_000]))
    return zone, change + dt.timedelta(seconds=seconds, microseconds=micro)


@settings(max_examples=600, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moment=moments_near_a_clock_change(), start=clock_times, end=clock_times)
@example(moment=("America/New_York", utc(2026, 11, 1, 6, 10)), start=dt.time(22, 0), end=dt.time(1, 30))
@example(moment=("Europe/Berlin", utc(2026, 3, 28, 22, 0)), start=dt.time(22, 0), end=dt.time(2, 30))
@example(moment=("Australia/Sydney", utc(2026, 4, 4, 15, 40)), start=dt.time(1, 0), end=dt.time(2, 30))
@example(moment=("Australia/Sydney", utc(2026, 10, 3, 15, 0)), start=dt.time(23, 0), end=dt.time(2, 15))
def test_quiet_hours_end_agrees_with_a_minute_walk_across_the_2026_clock_changes(moment, start, end):
    zone, now = moment
    expected = walked_quiet_end(now, zone, start, end)
    found = quiet_hours_end(now, zone, start, end)
    assert found == expected, f"{zone} {now.isoformat()} quiet {start}-{end}: {found} != walked {expected}"
    if found is not None:
        assert found > now  # never a past instant: the dispatcher defers the message once, to `found`
        assert quiet_hours_end(found, zone, start, end) is None  # and then it may go
