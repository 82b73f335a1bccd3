"""A priority change on a clock that has paused (issue 27): the stored deadline and breach, the API read and the
scheduler's due scan all use the new target's instants. Calendar periods through the API: HH:MM or a clear 422."""

import datetime as dt

from sqlalchemy import select

from complaints_support import ALL_WEEK, STAFF, complaint_body, seed_customer, seed_team, shanghai
from crm_complaints.complaints import clock_history, clocks, directory, intake, lifecycle
from crm_complaints.complaints.access import Actor
from crm_complaints.complaints.models import Agent, SlaClockRow, Team
from crm_complaints.complaints.scheduler import SlaScheduler
from crm_complaints.complaints.schemas import ComplaintCreate

LONG_LUNCH = {"timezone": "Asia/Shanghai", "periods": [["09:00", "12:00"], ["13:30", "18:00"]]}
AGENT = Actor("t1", "agent", "customer_service")  # where information complaints go
MONDAY_9AM = shanghai(2026, 6, 1, 9, 0)


async def file_p4(env, now):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "customer_service", {"t1": ALL_WEEK}, calendar=LONG_LUNCH)
    body = complaint_body(category="information", description="Where is the invoice for May", claimed_amount=None)
    async with env.runtime.transaction() as session:
        complaint = await intake.file_complaint(session, ComplaintCreate(**body), settings=env.settings, now=now)
    assert (complaint.agent_id, complaint.priority) == ("t1", "P4")  # first response 480, resolution 2400 business minutes
    return complaint.id


async def wait_on_customer(env, cid, paused_at, resumed_at):
    async with env.runtime.transaction() as session:
        await lifecycle.change_status(
            session, cid, "waiting_on_customer", reason="photos", actor=AGENT, settings=env.settings, now=paused_at
        )
    async with env.runtime.transaction() as session:
        await lifecycle.change_status(session, cid, "in_progress", reason=None, actor=AGENT, settings=env.settings, now=resumed_at)


async def become_key_account(env, now):
    """The tier event raises P4 to P3: first response 240, resolution 960."""
    async with env.runtime.transaction() as session:
        await directory.apply_tier(session, "cust-1", tier="key_account")
        raised = await clocks.reprioritize_open(session, "cust-1", settings=env.settings, now=now)
    assert [c.priority for c in raised] == ["P3"]


async def stored_clocks(env, cid) -> dict[str, SlaClockRow]:
    async with env.db.sessions() as session:
        return {r.kind: r for r in (await session.scalars(select(SlaClockRow).where(SlaClockRow.complaint_id == cid))).all()}


async def test_new_target_used_before_the_pause_is_stored_as_deadline_and_breach(env):
    cid = await file_p4(env, MONDAY_9AM)
    resumed = shanghai(2026, 6, 2, 10, 0)
    await wait_on_customer(env, cid, shanghai(2026, 6, 1, 17, 0), resumed)  # 390 minutes used
    await become_key_account(env, resumed)

    first, resolution = (await stored_clocks(env, cid)).values()
    assert first.kind == "first_response" and first.target_minutes == 240
    assert first.deadline_at == first.breached_at == shanghai(2026, 6, 1, 14, 30)
    assert first.next_escalation_at == resumed  # every level of the new target is past due
    assert resolution.target_minutes == 960 and resolution.breached_at is None
    # 960 - 390 = 570 from Tuesday 10:00: 120 + 270 on Tuesday, 180 on Wednesday morning
    assert resolution.deadline_at == shanghai(2026, 6, 3, 12, 0)
    level_1 = shanghai(2026, 6, 2, 17, 48)  # 768 - 390 = 378 minutes after Tuesday 10:00
    assert resolution.next_escalation_at == level_1

    read = (await env.client.get(f"/complaints/{cid}", headers=STAFF)).json()
    shown = {c["kind"]: c for c in read["clocks"]}
    assert shown["first_response"]["deadline_at"] == "2026-06-01T06:30:00Z"
    assert shown["first_response"]["breached_at"] == "2026-06-01T06:30:00Z"

    scheduler = SlaScheduler(env.db, env.settings)
    assert await scheduler.scan_once(level_1 - dt.timedelta(minutes=1)) == 3  # the first-response clock's three levels
    assert await scheduler.scan_once(level_1) == 1
    first, _ = (await stored_clocks(env, cid)).values()
    assert first.escalation_level == 3 and first.breached_at == shanghai(2026, 6, 1, 14, 30)  # the scan keeps the instant


async def test_old_target_ran_out_then_a_lower_one_moves_the_stored_breach_back(env):
    cid = await file_p4(env, MONDAY_9AM)
    paused = shanghai(2026, 6, 8, 12, 0)
    async with env.runtime.transaction() as session:
        await lifecycle.change_status(session, cid, "waiting_on_customer", reason="photos", actor=AGENT, settings=env.settings, now=paused)
    resolution = (await stored_clocks(env, cid))["resolution"]
    assert resolution.breached_at == shanghai(2026, 6, 8, 11, 30)  # the 2400-minute target ran out before the pause
    resumed = shanghai(2026, 6, 9, 9, 0)
    async with env.runtime.transaction() as session:
        await lifecycle.change_status(session, cid, "in_progress", reason=None, actor=AGENT, settings=env.settings, now=resumed)
    await become_key_account(env, resumed)

    resolution = (await stored_clocks(env, cid))["resolution"]
    assert resolution.deadline_at == resolution.breached_at == shanghai(2026, 6, 3, 10, 0)
    assert resolution.next_escalation_at == resumed
    listed = (await env.client.get("/complaints", params={"open_only": "true"}, headers=STAFF)).json()
    assert {c["kind"]: c["deadline_at"] for c in listed[0]["clocks"]}["resolution"] == "2026-06-03T02:00:00Z"


async def forget_stretches(env, cid):
    """As migration 0004 leaves a clock that had already counted time."""
    async with env.runtime.transaction() as session:
        for row in (await session.scalars(select(SlaClockRow).where(SlaClockRow.complaint_id == cid))).all():
            row.stretches = None


async def test_clocks_stored_before_stretches_were_kept_are_healed_from_the_timeline(env):
    cid = await file_p4(env, MONDAY_9AM)
    resumed = shanghai(2026, 6, 2, 10, 0)
    await wait_on_customer(env, cid, shanghai(2026, 6, 1, 17, 0), resumed)
    await forget_stretches(env, cid)
    await become_key_account(env, resumed)
    first = (await stored_clocks(env, cid))["first_response"]
    assert first.stretches is None
    assert first.deadline_at == resumed  # without its history: used up at an unknown instant, due on resume

    report = await clock_history.rebuild_stretches(env.db, env.settings, now=resumed)
    assert (report.rebuilt, report.not_reproduced) == (2, [])
    first, resolution = (await stored_clocks(env, cid)).values()
    assert first.deadline_at == first.breached_at == shanghai(2026, 6, 1, 14, 30)
    assert len(first.stretches) == 1 and resolution.deadline_at == shanghai(2026, 6, 3, 12, 0)
    assert (await clock_history.rebuild_stretches(env.db, env.settings)).rebuilt == 0  # once is enough


async def test_the_timeline_replay_reproduces_every_clock_move_of_the_service(env):
    cid = await file_p4(env, MONDAY_9AM)
    await seed_team(
        env.db,
        "claims",
        {"c1": ALL_WEEK},
        calendar={"timezone": "Europe/Berlin", "weekdays": [0, 1, 2, 3, 4, 5, 6], "periods": [["06:00", "23:00"]]},
    )
    supervisor = Actor("sup-1", "supervisor")
    steps = [
        lambda s, at: lifecycle.change_status(s, cid, "waiting_on_customer", reason="photos", actor=AGENT, settings=env.settings, now=at),
        lambda s, at: lifecycle.assign(
            s, cid, team_id="claims", agent_id=None, reason="a claim", actor=supervisor, settings=env.settings, now=at
        ),  # paused: moves without a stretch
        lambda s, at: lifecycle.customer_message(s, cid, "here they are", actor=supervisor, settings=env.settings, now=at),
        lambda s, at: lifecycle.assign(
            s, cid, team_id="customer_service", agent_id=None, reason="back", actor=supervisor, settings=env.settings, now=at
        ),  # running: the stretch ends in the claims calendar
        lambda s, at: lifecycle.reply(s, cid, "on it", actor=supervisor, settings=env.settings, now=at),
        lambda s, at: lifecycle.change_status(
            s, cid, "waiting_on_customer", reason="more", actor=supervisor, settings=env.settings, now=at
        ),
        lambda s, at: lifecycle.resolve(
            s, cid, outcome="refund", compensation_amount=None, message=None, actor=supervisor, settings=env.settings, now=at
        ),  # from waiting
        lambda s, at: lifecycle.reopen(s, cid, reason="not refunded", actor=supervisor, settings=env.settings, now=at),
        lambda s, at: lifecycle.resolve(
            s, cid, outcome="refunded", compensation_amount=None, message="done", actor=supervisor, settings=env.settings, now=at
        ),
        lambda s, at: lifecycle.close(s, cid, actor=supervisor, settings=env.settings, now=at),
    ]
    at = MONDAY_9AM
    for step in steps:
        at += dt.timedelta(hours=3, minutes=13, seconds=5)
        async with env.runtime.transaction() as session:
            await step(session, at)
    kept = {kind: row.stretches for kind, row in (await stored_clocks(env, cid)).items()}
    assert len(kept["first_response"]) == 2 and len(kept["resolution"]) == 3  # one in each calendar, one after the reopen
    await forget_stretches(env, cid)
    report = await clock_history.rebuild_stretches(env.db, env.settings)
    assert (report.rebuilt, report.not_reproduced) == (2, [])
    assert {kind: row.stretches for kind, row in (await stored_clocks(env, cid)).items()} == kept


async def test_a_timeline_that_does_not_reproduce_the_clock_leaves_it_unknown(env):
    cid = await file_p4(env, MONDAY_9AM)
    await wait_on_customer(env, cid, shanghai(2026, 6, 1, 17, 0), shanghai(2026, 6, 2, 10, 0))
    await forget_stretches(env, cid)
    async with env.runtime.transaction() as session:  # the team's hours changed since: the replay counts other time
        await directory.put_team(session, "customer_service", calendar={"timezone": "Asia/Shanghai"})
    report = await clock_history.rebuild_stretches(env.db, env.settings)
    assert report.rebuilt == 0 and len(report.not_reproduced) == 2
    assert all(row.stretches is None for row in (await stored_clocks(env, cid)).values())


async def test_calendar_periods_must_be_times_of_day(env):
    def team(*periods):
        return {"name": "Transport", "calendar": {"timezone": "Asia/Shanghai", "periods": [list(p) for p in periods]}}

    bad_minutes = await env.client.put("/teams/transport", json=team(("09:00", "12:00"), ("12:75", "18:00")), headers=STAFF)
    assert bad_minutes.status_code == 422
    assert bad_minutes.headers["content-type"].startswith("application/problem+json")
    problem = bad_minutes.json()
    assert problem["title"] == "Invalid calendar"
    assert "12:75 is not a time of day" in problem["detail"] and "minutes 00-59" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "calendar", "periods", "1", "0"]

    overnight = await env.client.put("/teams/transport", json=team(("22:00", "06:00")), headers=STAFF)
    assert overnight.status_code == 422
    assert "period 22:00-06:00 crosses midnight" in overnight.json()["detail"]
    assert "22:00-24:00 and 00:00-06:00" in overnight.json()["detail"]

    async with env.db.sessions() as session:
        assert await session.get(Team, "transport") is None  # nothing written
    good = await env.client.put("/teams/transport", json=team(("22:00", "24:00"), ("00:00", "06:00")), headers=STAFF)
    assert good.status_code == 200 and good.json()["calendar"]["periods"] == [["00:00", "06:00"], ["22:00", "24:00"]]


async def test_agent_shift_times_follow_the_same_rule(env):
    await seed_team(env.db, "transport")
    bad = await env.client.put(
        "/agents/a1", json={"team_id": "transport", "shifts": [{"weekday": 0, "start": "08:00", "end": "12:75"}]}, headers=STAFF
    )
    assert bad.status_code == 422 and "12:75 is not a time of day" in bad.text
    async with env.db.sessions() as session:
        assert await session.get(Agent, "a1") is None
    night = await env.client.put(
        "/agents/a1", json={"team_id": "transport", "shifts": [{"weekday": 0, "start": "22:00", "end": "06:00"}]}, headers=STAFF
    )
    assert night.status_code == 200  # a shift, unlike a calendar period, may run overnight
