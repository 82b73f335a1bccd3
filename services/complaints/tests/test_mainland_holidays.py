"""Mainland China's holidays and make-up working days from chinesecalendar: the setup endpoint, the prefill of a team
created on the fly, and SLA time counted around them."""

import datetime as dt

import pytest

from complaints_support import STAFF, agent_headers, complaint_body, seed_customer, shanghai
from crm_common.db import utcnow
from crm_complaints.complaints import intake
from crm_complaints.complaints.models import Team
from crm_complaints.complaints.schemas import ComplaintCreate
from crm_complaints.complaints.sla import BusinessCalendar
from crm_complaints.setup import holidays

OFFICE = BusinessCalendar(timezone="Asia/Shanghai").to_dict()  # Monday-Friday 09:00-12:00, 13:00-18:00
CUSTOMER = {"X-Actor-Id": "c-1", "X-Actor-Role": "customer", "X-Customer-Id": "cust-1"}


def test_2026_is_the_state_councils_arrangement():
    year = holidays.mainland_china(2026)
    assert [d.isoformat() for d in year.workdays] == ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]
    days = {d.isoformat() for d in year.holidays}
    assert {f"2026-10-0{d}" for d in range(1, 8)} <= days  # National Day week, its weekend included
    assert {"2026-02-15", "2026-02-23", "2026-01-02"} <= days  # a Sunday in the Spring Festival break, days off in lieu
    assert "2026-01-10" not in days  # an ordinary Saturday is no holiday
    assert all(d.weekday() >= 5 for d in year.workdays)


def test_a_year_the_package_does_not_have_is_said_not_guessed():
    first, last = holidays.covered_years()
    with pytest.raises(holidays.YearNotCovered, match=f"{first}-{last}, not {last + 1}"):
        holidays.mainland_china(last + 1)


def test_prefill_adds_this_and_next_year_only_for_a_mainland_zone():
    kept = {**OFFICE, "holidays": ["2026-06-01"]}
    filled = holidays.prefill(kept, dt.date(2025, 12, 1))
    assert "2026-06-01" in filled["holidays"] and "2025-10-01" in filled["holidays"] and "2026-10-01" in filled["holidays"]
    assert "2026-02-28" in filled["workdays"] and "2025-09-28" in filled["workdays"]
    first, last = holidays.covered_years()
    beyond = holidays.prefill(OFFICE, dt.date(last + 1, 3, 1))
    assert (beyond["holidays"], beyond["workdays"]) == ([], [])  # nothing known: nothing invented
    hong_kong = {**OFFICE, "timezone": "Asia/Hong_Kong"}
    assert holidays.prefill(hong_kong, dt.date(2025, 12, 1)) == hong_kong


def test_sla_time_skips_national_day_and_counts_the_make_up_saturday():
    calendar = BusinessCalendar.from_dict(holidays.prefill(OFFICE, dt.date(2026, 9, 1)))
    # Wednesday 30 September 17:00 + 240 business minutes: one hour that day, 1-7 October off, three hours on Thursday the 8th
    assert calendar.add_business_minutes(shanghai(2026, 9, 30, 17, 0), 240) == shanghai(2026, 10, 8, 12, 0)
    # Friday 9 October 17:00 + 120: Saturday the 10th is worked
    assert calendar.add_business_minutes(shanghai(2026, 10, 9, 17, 0), 120) == shanghai(2026, 10, 10, 10, 0)


async def test_the_endpoint_answers_staff_and_refuses_an_uncovered_year(env):
    answer = await env.client.get("/calendars/mainland-china/2026", headers=agent_headers("a-1", "transport"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["region"], body["year"], body["source"]) == ("CN", 2026, holidays.SOURCE)
    assert body["workdays"][0] == "2026-01-04" and "2026-10-01" in body["holidays"]
    first, last = holidays.covered_years()
    missing = await env.client.get(f"/calendars/mainland-china/{last + 1}", headers=STAFF)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["covered"] == {"from": first, "to": last}
    assert (await env.client.get("/calendars/mainland-china/99999", headers=STAFF)).status_code == 422
    assert (await env.client.get("/calendars/mainland-china/2026", headers=CUSTOMER)).status_code == 403
    assert (await env.client.get("/calendars/mainland-china/2026")).status_code == 401


async def test_a_team_created_by_a_filing_gets_the_mainland_dates(env):
    await seed_customer(env.db, "cust-1")
    async with env.runtime.transaction() as session:
        complaint = await intake.file_complaint(
            session, ComplaintCreate(**complaint_body()), settings=env.settings, now=shanghai(2026, 9, 21, 10, 0)
        )
    async with env.db.sessions() as session:
        team = await session.get(Team, complaint.team_id)
    assert team.calendar == holidays.prefill(OFFICE, utcnow().date())
    # and the admin edits the team's own copy: a PUT stores exactly what it is given
    edited = {**team.calendar, "holidays": ["2026-12-24"], "workdays": []}
    put = await env.client.put(f"/teams/{team.id}", json={"calendar": edited}, headers=STAFF)
    assert put.status_code == 200, put.text
    assert (put.json()["calendar"]["holidays"], put.json()["calendar"]["workdays"]) == (["2026-12-24"], [])
