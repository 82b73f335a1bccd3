"""Routing rules from the database, assignment by load / round-robin, the team queue, reassignment."""

from sqlalchemy import select

from complaints_support import ALL_WEEK, STAFF, agent_headers, complaint_body, seed_customer, seed_team, shanghai
from crm_complaints.complaints import directory, intake, lifecycle
from crm_complaints.complaints.access import Actor
from crm_complaints.complaints.models import Complaint, TimelineEntry
from crm_complaints.complaints.schemas import ComplaintCreate

MONDAY_10 = shanghai(2026, 9, 21, 10, 0)
MONDAY_22 = shanghai(2026, 9, 21, 22, 0)
DAY_SHIFT = [(d, 9 * 60, 18 * 60) for d in range(5)]


async def file(env, now, **overrides):
    async with env.runtime.transaction() as session:
        complaint = await intake.file_complaint(session, ComplaintCreate(**complaint_body(**overrides)), settings=env.settings, now=now)
        return complaint.id, complaint.team_id, complaint.agent_id, complaint.status


async def test_rules_are_data_and_the_most_specific_match_wins(env):
    await seed_customer(env.db, "cust-1", region="East")
    for team in ("transport", "warehouse", "claims", "billing", "customer_service"):
        await seed_team(env.db, team, {})
    rules = [
        {"team": "claims", "category": "damage"},
        {"team": "warehouse", "category": "damage", "service_type": "warehousing"},
        {"team": "transport", "category": "damage", "region": "East", "service_type": "trunk"},
        {"team": "billing", "region": "West"},
    ]
    put = await env.client.put("/routing-rules", json=rules, headers=STAFF)
    assert put.status_code == 200
    assert (await env.client.put("/routing-rules", json=rules, headers=agent_headers("a", "claims"))).status_code == 403
    assert (await env.client.put("/routing-rules", json=[{"team": "nope"}], headers=STAFF)).status_code == 422
    assert (await file(env, MONDAY_10, category="damage"))[1] == "claims"
    assert (await file(env, MONDAY_10, category="damage", service_type="warehousing"))[1] == "warehouse"
    assert (await file(env, MONDAY_10, category="damage", service_type="trunk"))[1] == "transport"  # region East from the directory
    assert (await file(env, MONDAY_10, category="delay", region="West"))[1] == "billing"
    assert (await file(env, MONDAY_10, category="delay"))[1] == "customer_service"  # no rule: default team


async def test_no_agent_on_shift_queues_at_team_level_then_assign_picks_least_loaded(env):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"day-1": DAY_SHIFT, "day-2": DAY_SHIFT})
    cid, team, agent, status = await file(env, MONDAY_22)
    assert (team, agent, status) == ("transport", None, "new")
    async with env.db.sessions() as session:
        entry = await session.scalar(select(TimelineEntry).where(TimelineEntry.complaint_id == cid, TimelineEntry.kind == "assigned"))
        assert entry.data["queued"] is True
    # in the day two complaints go to day-1 and day-2 by load; the queued one then goes to the less loaded
    first = await file(env, MONDAY_10, order_ids=["o2"])
    second = await file(env, MONDAY_10, order_ids=["o3"])
    assert {first[2], second[2]} == {"day-1", "day-2"}
    async with env.runtime.transaction() as session:
        await lifecycle.resolve(
            session,
            first[0],
            outcome="done",
            compensation_amount=None,
            message=None,
            actor=Actor(first[2], "agent", "transport"),
            settings=env.settings,
            now=MONDAY_10,
        )
    async with env.runtime.transaction() as session:
        complaint = await lifecycle.assign(
            session,
            cid,
            team_id=None,
            agent_id=None,
            reason=None,
            actor=Actor("lead", "team_lead", "transport"),
            settings=env.settings,
            now=MONDAY_10,
        )
        assert (complaint.agent_id, complaint.status) == (first[2], "assigned")


async def test_round_robin_and_manual_reassignment_with_reason(env):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"rr-a": ALL_WEEK, "rr-b": ALL_WEEK, "rr-c": ALL_WEEK}, strategy="round_robin")
    await seed_team(env.db, "claims", {"claims-1": ALL_WEEK})
    agents = [(await file(env, MONDAY_10, order_ids=[f"o{i}"]))[2] for i in range(5)]
    assert agents == ["rr-a", "rr-b", "rr-c", "rr-a", "rr-b"]

    body = (await env.client.post("/complaints", json=complaint_body(order_ids=["x"]))).json()
    me = agent_headers(body["agent_id"], "transport")
    no_reason = await env.client.post(f"/complaints/{body['id']}/assign", json={"agent_id": "rr-a"}, headers=me)
    assert no_reason.status_code == 422
    wrong_team = await env.client.post(f"/complaints/{body['id']}/assign", json={"agent_id": "claims-1", "reason": "x"}, headers=me)
    assert wrong_team.status_code == 422
    moved = await env.client.post(
        f"/complaints/{body['id']}/assign", json={"team_id": "claims", "reason": "it is a damage claim"}, headers=me
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["team_id"], moved.json()["agent_id"], moved.json()["status"]) == ("claims", "claims-1", "assigned")
    timeline = (await env.client.get(f"/complaints/{body['id']}/timeline", headers=STAFF)).json()
    reassigned = [e for e in timeline if e["kind"] == "reassigned"]
    assert reassigned and reassigned[0]["actor_id"] == body["agent_id"]
    assert reassigned[0]["body"] == "Reassigned to claims-1 (team claims): it is a damage claim"  # the reason in the service's sentence
    assert reassigned[0]["message_key"] == "timeline.reassigned" and reassigned[0]["message_params"]["reason"] == "it is a damage claim"
    # the old team's agent can no longer act on it
    assert (await env.client.post(f"/complaints/{body['id']}/notes", json={"body": "x"}, headers=me)).status_code == 403


async def test_key_account_gets_higher_priority_from_tier_events(env):
    await seed_customer(env.db, "vip", tier="key_account")
    await seed_customer(env.db, "plain")
    await seed_team(env.db, "transport", {})
    async with env.runtime.transaction() as session:
        vip = await intake.file_complaint(session, ComplaintCreate(**complaint_body(customer_id="vip")), settings=env.settings)
        plain = await intake.file_complaint(session, ComplaintCreate(**complaint_body(customer_id="plain")), settings=env.settings)
        assert (vip.priority, plain.priority) == ("P2", "P3")
    async with env.runtime.transaction() as session:
        await directory.apply_tier(session, "plain", tier="key_account")
    async with env.runtime.transaction() as session:
        again = await intake.file_complaint(
            session, ComplaintCreate(**complaint_body(customer_id="plain", order_ids=["z"])), settings=env.settings
        )
        assert again.priority == "P2"
        rows = (await session.scalars(select(Complaint.priority).order_by(Complaint.filed_at))).all()
        assert list(rows) == ["P2", "P3", "P2"]


async def test_team_and_agent_setup_over_http(env):
    await seed_customer(env.db, "cust-1")
    bad = await env.client.put("/teams/transport", json={"calendar": {"periods": [["18:00", "09:00"]]}}, headers=STAFF)
    assert bad.status_code == 422
    assert (await env.client.put("/teams/transport", json={}, headers=agent_headers("a", "transport"))).status_code == 403
    team = await env.client.put(
        "/teams/transport",
        json={
            "name": "Transport",
            "strategy": "round_robin",
            "team_lead": "lead-1",
            "calendar": {"timezone": "Asia/Shanghai", "holidays": ["2026-10-01"]},
        },
        headers=STAFF,
    )
    assert team.status_code == 200 and team.json()["calendar"]["holidays"] == ["2026-10-01"]
    agent = await env.client.put(
        "/agents/night-owl", json={"team_id": "transport", "shifts": [{"weekday": 0, "start": "20:00", "end": "08:00"}]}, headers=STAFF
    )
    assert agent.status_code == 200
    assert (await env.client.put("/agents/x", json={"team_id": "nope"}, headers=STAFF)).status_code == 422
    assert (await file(env, MONDAY_22))[2] == "night-owl"  # Monday 22:00 is inside the overnight shift
    assert (await file(env, MONDAY_10, order_ids=["o9"]))[2] is None  # nobody on shift at 10:00


async def test_concurrent_filings_share_the_load_on_postgres(pg_env):
    env = pg_env
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"p1": ALL_WEEK, "p2": ALL_WEEK, "p3": ALL_WEEK}, strategy="round_robin")
    await seed_team(env.db, "claims", {"q1": ALL_WEEK, "q2": ALL_WEEK})
    import asyncio

    delays = [env.client.post("/complaints", json=complaint_body(order_ids=[f"d{i}"], tracking_numbers=[])) for i in range(9)]
    damages = [
        env.client.post("/complaints", json=complaint_body(category="damage", order_ids=[f"x{i}"], tracking_numbers=[])) for i in range(6)
    ]
    responses = await asyncio.gather(*delays, *damages)
    assert {r.status_code for r in responses} == {201}
    by_agent = {}
    for r in responses:
        by_agent[r.json()["agent_id"]] = by_agent.get(r.json()["agent_id"], 0) + 1
    assert by_agent == {"p1": 3, "p2": 3, "p3": 3, "q1": 3, "q2": 3}  # round-robin and least-load, even under concurrency


async def test_concurrent_puts_and_filings_creating_the_same_team_or_agent_all_succeed(env):
    """PUT /teams/{id} creates or replaces: a concurrent creator (another PUT, or a filing routed to the team, as the demo
    seeder races the worker under `make run`) never turns it into a UNIQUE conflict (409)."""
    import asyncio

    await seed_customer(env.db, "cust-1")
    puts = [
        env.client.put("/teams/transport", json={"name": f"Transport {n}", "calendar": {"timezone": "Asia/Shanghai"}}, headers=STAFF)
        for n in range(6)
    ]
    filings = [file(env, MONDAY_10, customer_id="cust-1", category="delay") for _ in range(2)]
    answers = await asyncio.gather(*puts, *filings, return_exceptions=True)
    assert [getattr(a, "status_code", a) for a in answers[:6]] == [200] * 6
    assert not [a for a in answers[6:] if isinstance(a, BaseException)]
    team = (await env.client.get("/teams/transport", headers=STAFF)).json()
    assert team["name"].startswith("Transport ") and team["calendar"]["timezone"] == "Asia/Shanghai"
    agent_puts = [
        env.client.put(
            "/agents/new-agent",
            json={"team_id": "transport", "name": f"Agent {n}", "shifts": [{"weekday": 0, "start": "09:00", "end": "18:00"}]},
            headers=STAFF,
        )
        for n in range(6)
    ]
    assert [a.status_code for a in await asyncio.gather(*agent_puts)] == [200] * 6
    agent = (await env.client.get("/agents/new-agent", headers=STAFF)).json()
    assert agent["team_id"] == "transport" and len(agent["shifts"]) == 1
