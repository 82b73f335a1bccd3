"""Stored deadlines, escalation tiers exactly once, pauses, restarts, and two schedulers racing on PostgreSQL."""

import asyncio
import collections
import datetime as dt

import orjson
from sqlalchemy import select

from complaints_support import ALL_WEEK, complaint_body, seed_customer, seed_team, shanghai
from crm_common.db import Database
from crm_common.outbox import outbox_table
from crm_complaints.complaints import intake, lifecycle, lookup
from crm_complaints.complaints.access import Actor
from crm_complaints.complaints.models import SlaClockRow
from crm_complaints.complaints.scheduler import SlaScheduler
from crm_complaints.complaints.schemas import ComplaintCreate
from crm_complaints.complaints.sla import DEFAULT_TARGETS, BusinessCalendar

CALENDAR = {"timezone": "Asia/Shanghai", "periods": [["09:00", "12:00"], ["13:00", "18:00"]], "holidays": ["2026-10-01", "2026-10-02"]}
FRIDAY_4PM = shanghai(2026, 9, 25, 16, 0)


async def escalations(db):
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(outbox_table.c.body).where(outbox_table.c.event_type == "ComplaintEscalated").order_by(outbox_table.c.id)
            )
        ).all()
    return [orjson.loads(r.body)["payload"] for r in rows]


async def file(env, now, **overrides):
    async with env.runtime.transaction() as session:
        complaint = await intake.file_complaint(session, ComplaintCreate(**complaint_body(**overrides)), settings=env.settings, now=now)
        return complaint.id


async def test_tiers_fire_once_each_at_business_hour_deadlines(env):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"t1": ALL_WEEK}, calendar=CALENDAR, team_lead="lead-li", manager="mgr-wang")
    cid = await file(env, FRIDAY_4PM)  # P3: first response 240, resolution 960 business minutes
    calendar = BusinessCalendar.from_dict(CALENDAR)
    first_target, _ = DEFAULT_TARGETS["P3"]
    due = {level: calendar.add_business_minutes(FRIDAY_4PM, first_target * f) for level, f in ((1, 0.8), (2, 1.0), (3, 1.5))}
    # 192 business minutes from Friday 16:00: 120 on Friday, then Monday 09:00 + 72 = 10:12
    assert due[1] == shanghai(2026, 9, 28, 10, 12)
    async with env.db.sessions() as session:
        stored = await session.scalar(select(SlaClockRow).where(SlaClockRow.complaint_id == cid, SlaClockRow.kind == "first_response"))
        assert stored.deadline_at == due[2] and stored.next_escalation_at == due[1]

    scheduler = SlaScheduler(env.db, env.settings)
    assert await scheduler.scan_once(due[1] - dt.timedelta(minutes=1)) == 0
    assert await scheduler.scan_once(due[1]) == 1
    assert await scheduler.scan_once(due[1]) == 0  # the same level never fires twice
    assert await scheduler.scan_once(due[2] - dt.timedelta(seconds=1)) == 0
    assert await scheduler.scan_once(due[3] + dt.timedelta(hours=1)) == 2  # levels 2 and 3 were both due
    assert await scheduler.scan_once(due[3] + dt.timedelta(days=30)) >= 0
    found = [(e["clock"], e["level"], e["reason"], e["escalated_to"]) for e in await escalations(env.db) if e["clock"] == "first_response"]
    assert found == [
        ("first_response", 1, "near_breach", "lead-li"),
        ("first_response", 2, "breach", "mgr-wang"),
        ("first_response", 3, "breach", "head-of-service"),
    ]
    async with env.db.sessions() as session:
        stored = await session.scalar(select(SlaClockRow).where(SlaClockRow.complaint_id == cid, SlaClockRow.kind == "first_response"))
        assert stored.escalation_level == 3 and stored.breached_at == due[2] and stored.next_escalation_at is None


async def test_waiting_on_customer_pause_moves_the_deadline_and_nothing_escalates_while_paused(env):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"t1": ALL_WEEK}, calendar=CALENDAR)
    cid = await file(env, FRIDAY_4PM)
    agent = Actor("t1", "agent", "transport")
    monday_9 = shanghai(2026, 9, 28, 9, 0)
    async with env.runtime.transaction() as session:
        await lifecycle.reply(session, cid, "looking", actor=agent, settings=env.settings, now=FRIDAY_4PM + dt.timedelta(minutes=30))
        await lifecycle.change_status(
            session, cid, "waiting_on_customer", reason="photos", actor=agent, settings=env.settings, now=monday_9
        )  # 120 business minutes used (Friday 16:00-18:00)
    scheduler = SlaScheduler(env.db, env.settings)
    assert await scheduler.scan_once(shanghai(2026, 10, 30, 9, 0)) == 0  # a month later, still paused
    resume = shanghai(2026, 9, 30, 17, 0)  # Wednesday 17:00; then 1-2 Oct are holidays
    async with env.runtime.transaction() as session:
        await lifecycle.change_status(session, cid, "in_progress", reason=None, actor=agent, settings=env.settings, now=resume)
    async with env.db.sessions() as session:
        clock = await session.scalar(select(SlaClockRow).where(SlaClockRow.complaint_id == cid, SlaClockRow.kind == "resolution"))
    # 960 - 120 = 840 left: Wed 60, Mon 5 Oct 480, Tue 6 Oct 300 -> 6 Oct 15:00 (09:00-12:00 = 180, 13:00-15:00 = 120)
    assert clock.deadline_at == shanghai(2026, 10, 6, 15, 0)
    near = BusinessCalendar.from_dict(CALENDAR).add_business_minutes(resume, 960 * 0.8 - 120)
    assert clock.next_escalation_at == near


async def test_resolution_clock_resumes_on_reopen_and_restart_keeps_escalation_level(env):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"t1": ALL_WEEK}, calendar=CALENDAR)
    cid = await file(env, FRIDAY_4PM)
    agent = Actor("t1", "agent", "transport")
    resolved_at = shanghai(2026, 9, 28, 12, 0)  # 120 + 180 = 300 minutes used
    async with env.runtime.transaction() as session:
        await lifecycle.resolve(
            session, cid, outcome="fixed", compensation_amount=None, message="done", actor=agent, settings=env.settings, now=resolved_at
        )
    reopened_at = shanghai(2026, 9, 29, 9, 0)
    async with env.runtime.transaction() as session:
        await lifecycle.reopen(session, cid, reason="not fixed", actor=agent, settings=env.settings, now=reopened_at)
    async with env.db.sessions() as session:
        clocks = {c.kind: c for c in (await session.scalars(select(SlaClockRow).where(SlaClockRow.complaint_id == cid))).all()}
    assert clocks["resolution"].deadline_at == BusinessCalendar.from_dict(CALENDAR).add_business_minutes(reopened_at, 960 - 300)
    assert clocks["first_response"].deadline_at is None and clocks["first_response"].next_escalation_at is None


async def test_two_scheduler_replicas_never_escalate_twice(pg_env):
    env = pg_env
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"t1": ALL_WEEK}, calendar=CALENDAR)
    ids = [await file(env, FRIDAY_4PM, order_ids=[f"o{i}"]) for i in range(15)]
    replicas = [Database(env.url, pool_size=5), Database(env.url, pool_size=5)]
    try:
        schedulers = [SlaScheduler(db, env.settings) for db in replicas]
        far = FRIDAY_4PM + dt.timedelta(days=60)
        totals = [0, 0]
        for _ in range(3):
            results = await asyncio.gather(*(s.scan_once(far) for s in schedulers))
            totals = [a + b for a, b in zip(totals, results)]
    finally:
        for db in replicas:
            await db.dispose()
    found = await escalations(env.db)
    per_key = collections.Counter((e["complaint_id"], e["clock"], e["level"]) for e in found)
    assert len(per_key) == len(ids) * 2 * 3  # every complaint, both clocks, three levels
    assert set(per_key.values()) == {1}
    assert sum(totals) == len(found)
    print("emitted per replica", totals, "lost races", [s.lost_races for s in schedulers])


async def test_worker_runtime_runs_the_scheduler_in_the_background(database_factory, kafka_settings):
    from complaints_support import close_env, make_env
    from crm_complaints.worker import build_runtime

    env = await make_env(database_factory, "sqlite", kafka=kafka_settings)
    settings = env.settings.model_copy(
        update={"run_scheduler": True, "scheduler_interval_s": 0.1, "run_consumers": False, "run_outbox_relay": False}
    )
    await seed_customer(env.db, "cust-1")
    await seed_team(
        env.db, "transport", {}, calendar={"timezone": "UTC", "weekdays": [0, 1, 2, 3, 4, 5, 6], "periods": [["00:00", "24:00"]]}
    )
    cid = await file(env, dt.datetime.now(dt.UTC) - dt.timedelta(days=10))  # long overdue
    runtime = build_runtime(settings)
    await runtime.start()
    try:
        from crm_devbroker.testing import wait_until

        async def all_levels():
            return len([e for e in await escalations(env.db) if e["complaint_id"] == cid]) == 6 or None

        await wait_until(all_levels, timeout_s=15)
    finally:
        await runtime.stop()
        await close_env(env)


async def test_two_replicas_racing_on_each_clock_emit_once_per_level(pg_env):
    """Both replicas read the same due clock and try to escalate it at the same moment, clock by clock."""
    env = pg_env
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"t1": ALL_WEEK}, calendar=CALENDAR)
    for i in range(8):
        await file(env, FRIDAY_4PM, order_ids=[f"o{i}"])
    replicas = [Database(env.url, pool_size=2), Database(env.url, pool_size=2)]
    try:
        a, b = (SlaScheduler(db, env.settings) for db in replicas)
        far = FRIDAY_4PM + dt.timedelta(days=60)
        due_a, due_b = await a.due_clock_ids(far), await b.due_clock_ids(far)
        assert due_a == due_b and len(due_a) == 16
        results = [await asyncio.gather(a.escalate_clock(cid, far), b.escalate_clock(cid, far)) for cid in due_a]
    finally:
        for db in replicas:
            await db.dispose()
    assert all(sum(pair) == 3 for pair in results)  # three levels per clock, split however the race went
    found = await escalations(env.db)
    per_key = collections.Counter((e["complaint_id"], e["clock"], e["level"]) for e in found)
    assert len(found) == 16 * 3 and set(per_key.values()) == {1}


async def test_scan_hands_team_queued_complaints_to_agents_coming_on_shift(env):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"day": [(d, 9 * 60, 18 * 60) for d in range(5)]}, calendar=CALENDAR)
    night = shanghai(2026, 9, 28, 22, 0)
    cid = await file(env, night)
    scheduler = SlaScheduler(env.db, env.settings)
    assert await scheduler.assign_queued(night + dt.timedelta(hours=1)) == 0
    assert await scheduler.assign_queued(shanghai(2026, 9, 29, 9, 0)) == 1
    assert await scheduler.assign_queued(shanghai(2026, 9, 29, 9, 5)) == 0
    async with env.db.sessions() as session:
        complaint = await lookup.get_complaint(session, cid)
        assert (complaint.status, complaint.agent_id) == ("assigned", "day")
        rows = (
            await session.execute(
                select(outbox_table.c.body).where(outbox_table.c.event_type == "ComplaintAssigned").order_by(outbox_table.c.id)
            )
        ).all()
    assert [orjson.loads(r.body)["payload"]["agent"] for r in rows] == [None, "day"]
