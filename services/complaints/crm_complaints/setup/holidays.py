"""Mainland China's public holidays and make-up working days (调休), from the `chinesecalendar` package.

The State Council publishes each year's arrangement in November or December of the year before; the package carries
the published years and raises for the others, so a year it does not have is said plainly (`YearNotCovered`), never
guessed. Teams get these dates prefilled (a team created on the fly, the console's prefill button, the demo seeder)
and each team may edit its own copy: the calendar stored on the team is what the SLA clocks count in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib.metadata import version

import chinese_calendar

SOURCE = f"chinesecalendar {version('chinesecalendar')}"
# zones whose local calendar is the mainland's (a team in Hong Kong or Taipei keeps its own holidays)
MAINLAND_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "Asia/Urumqi", "PRC"})


class YearNotCovered(LookupError):
    def __init__(self, year: int, first: int, last: int):
        super().__init__(
            f"{SOURCE} has mainland China's holidays for {first}-{last}, not {year}: the State Council's arrangement "
            f"for {year} is not in it (a newer chinesecalendar release brings it); enter the dates by hand meanwhile."
        )
        self.year, self.first, self.last = year, first, last


@dataclass(frozen=True)
class HolidayYear:
    year: int
    holidays: list[dt.date]  # days off, weekends inside a holiday break included
    workdays: list[dt.date]  # make-up working days: a Saturday or Sunday worked before or after a break


def covered_years() -> tuple[int, int]:
    days = chinese_calendar.constants.holidays
    return min(days).year, max(days).year


def mainland_china(year: int) -> HolidayYear:
    first, last = covered_years()
    if not first <= year <= last:
        raise YearNotCovered(year, first, last)
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    # an ordinary weekend is a "holiday" to the package too, but without a name: it is not one for a calendar
    holidays = [d for d in chinese_calendar.get_holidays(start, end, include_weekends=True) if chinese_calendar.get_holiday_detail(d)[1]]
    workdays = [d for d in chinese_calendar.get_workdays(start, end, include_weekends=True) if d.weekday() >= 5]
    return HolidayYear(year, holidays, workdays)


def prefill(calendar: dict, today: dt.date) -> dict:
    """The calendar with this year's and next year's mainland dates added (those the package has), for a team in a
    mainland time zone; other calendars come back unchanged."""
    if calendar.get("timezone", "Asia/Shanghai") not in MAINLAND_ZONES:
        return calendar
    holidays, workdays = set(calendar.get("holidays", [])), set(calendar.get("workdays", []))
    for year in (today.year, today.year + 1):
        try:
            found = mainland_china(year)
        except YearNotCovered:
            continue
        holidays.update(d.isoformat() for d in found.holidays)
        workdays.update(d.isoformat() for d in found.workdays)
    return {**calendar, "holidays": sorted(holidays), "workdays": sorted(workdays)}
