"""Stored deadlines through the whole service (filing, waiting_on_customer, reassignment), against the oracle."""

import asyncio
import datetime as dt

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from complaints_support import ALL_WEEK, complaint_body, seed_customer, seed_team, shanghai
from crm_common.db import Database
from crm_common.migrations import upgrade
from crm_complaints import ALEMBIC_INI
from crm_complaints.complaints import directory, intake, lifecycle
from crm_complaints.complaints.access import Actor
from crm_complaints.complaints.models import SlaClockRow
from crm_complaints.complaints.schemas import ComplaintCreate
from crm_complaints.settings import ComplaintsSettings
from sla_oracle import oracle_deadline

UTC = dt.UTC


def minutes_text(m):
    return f"{m // 60:02d}:{m % 60:02d}"


@st.composite
def scenario(draw):
    zone = draw(st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York", "UTC"]))
    weekdays = draw(st.frozensets(st.integers(0, 6), min_size=3))
    n = draw(st.integers(1, 3))
    points = sorted(draw(st.sets(st.integers(0, 96).map(lambda q: q * 15), min_size=2 * n, max_size=2 * n)))
    periods = [(points[2 * i], points[2 * i + 1]) for i in range(n)]
    assume(sum(e - s for s, e in periods) >= 240)  # keeps the oracle's walk short
    base = draw(st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 20)))
    near = st.integers(0, 10).map(lambda k: base + dt.timedelta(days=k))
    holidays = draw(st.frozensets(near, max_size=3))
    workdays = draw(st.frozensets(near, max_size=2))
    filed = dt.datetime.combine(base, dt.time(), tzinfo=UTC) + dt.timedelta(minutes=draw(st.integers(0, 2 * 1440)))
    pause_after = draw(st.integers(1, 2 * 1440))
    pause_length = draw(st.integers(0, 3 * 1440))
    return (zone, weekdays, periods, holidays, workdays), filed, pause_after, pause_length


async def run_scenario(db, url, index, cal_data, filed, pause_after, pause_length):
    zone, weekdays, periods, holidays, workdays = cal_data
    settings_ = ComplaintsSettings(database_url=url)
    team = f"team{index}"
    async with db.transaction() as session:
        await directory.put_team(
            session,
            team,
            calendar={
                "timezone": zone,
                "weekdays": sorted(weekdays),
                "periods": [[minutes_text(s), minutes_text(e)] for s, e in periods],
                "holidays": [d.isoformat() for d in holidays],
                "workdays": [d.isoformat() for d in workdays],
            },
        )
        await directory.put_agent(session, f"a{index}", team_id=team, shifts=ALL_WEEK)
        await directory.replace_rules(session, [{"team": team}])
    async with db.transaction() as session:
        body = complaint_body(order_ids=[f"o{index}"], category="damage", claimed_amount="20000")  # P1: 30 / 240 minutes
        complaint = await intake.file_complaint(session, ComplaintCreate(**body), settings=settings_, now=filed)
        cid = complaint.id
    agent = Actor(f"a{index}", "agent", team)
    pause_at = filed + dt.timedelta(minutes=pause_after)
    resume_at = pause_at + dt.timedelta(minutes=pause_length)
    async with db.transaction() as session:
        await lifecycle.change_status(session, cid, "waiting_on_customer", reason=None, actor=agent, settings=settings_, now=pause_at)
    async with db.transaction() as session:
        await lifecycle.change_status(session, cid, "in_progress", reason=None, actor=agent, settings=settings_, now=resume_at)
    async with db.sessions() as session:
        rows = {r.kind: r for r in (await session.scalars(select(SlaClockRow).where(SlaClockRow.complaint_id == cid))).all()}
    return rows


def test_stored_deadlines_with_a_pause_match_the_oracle(database_factory, tmp_path):
    url = f"sqlite:///{tmp_path / 'deadlines.db'}"
    upgrade(ALEMBIC_INI, url)
    loop = asyncio.new_event_loop()
    db = Database(url)
    loop.run_until_complete(seed_customer(db, "cust-1"))
    counter = iter(range(10_000))

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=scenario())
    def check(case):
        cal_data, filed, pause_after, pause_length = case
        for target in (30, 240):  # a P1 complaint (damage with a large claim)
            assume(oracle_deadline(cal_data, filed, target, limit_days=20) is not None)
        pause_at = filed + dt.timedelta(minutes=pause_after)
        resume_at = pause_at + dt.timedelta(minutes=pause_length)
        rows = loop.run_until_complete(run_scenario(db, url, next(counter), cal_data, filed, pause_after, pause_length))
        for kind, target in (("first_response", 30), ("resolution", 240)):
            expected = oracle_deadline(cal_data, filed, target, excluded=(pause_at, resume_at), limit_days=20)
            assume(expected is not None)
            if expected <= pause_at:  # used up before the pause: the deadline is when that happened
                expected = oracle_deadline(cal_data, filed, target, limit_days=20)
            assert rows[kind].deadline_at == expected, kind
            assert rows[kind].escalation_level == 0

    try:
        check()
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()


async def test_reassignment_counts_old_calendar_then_new(env):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"t1": ALL_WEEK}, calendar={"timezone": "Asia/Shanghai"})
    await seed_team(
        env.db, "claims", {"c1": ALL_WEEK}, calendar={"timezone": "UTC", "weekdays": list(range(7)), "periods": [["00:00", "24:00"]]}
    )
    filed = shanghai(2026, 9, 25, 16, 0)  # Friday
    async with env.runtime.transaction() as session:
        complaint = await intake.file_complaint(session, ComplaintCreate(**complaint_body()), settings=env.settings, now=filed)
        cid = complaint.id
    moved_at = shanghai(2026, 9, 25, 17, 30)  # 90 business minutes used in the Shanghai calendar
    async with env.runtime.transaction() as session:
        await lifecycle.assign(
            session,
            cid,
            team_id="claims",
            agent_id=None,
            reason="damage, not delay",
            actor=Actor("t1", "agent", "transport"),
            settings=env.settings,
            now=moved_at,
        )
    async with env.db.sessions() as session:
        rows = {r.kind: r for r in (await session.scalars(select(SlaClockRow).where(SlaClockRow.complaint_id == cid))).all()}
    # the claims team works around the clock: what is left runs in wall-clock minutes
    assert rows["first_response"].deadline_at == moved_at + dt.timedelta(minutes=240 - 90)
    assert rows["resolution"].deadline_at == moved_at + dt.timedelta(minutes=960 - 90)
