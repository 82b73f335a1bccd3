"""The report's figures equal those computed directly from the rows."""

import datetime as dt
import math
import random
import statistics

from sqlalchemy import select

from complaints_support import ALL_WEEK, STAFF, complaint_body, seed_customer, seed_team, shanghai
from crm_complaints.complaints import intake, lifecycle, reports
from crm_complaints.complaints.access import Actor
from crm_complaints.complaints.models import Complaint, DirectoryCustomer, SlaClockRow
from crm_complaints.complaints.schemas import ComplaintCreate
from crm_complaints.survey import service as survey_links


async def build_history(env, seed=7):
    rng = random.Random(seed)
    await seed_customer(env.db, "cust-1", account_manager="am-zhang")
    await seed_customer(env.db, "cust-2", account_manager="am-li")
    await seed_customer(env.db, "cust-3")  # no account manager
    for team, agents in (("transport", ["t1", "t2"]), ("claims", ["c1"]), ("billing", ["b1"]), ("customer_service", ["s1"])):
        await seed_team(env.db, team, {a: ALL_WEEK for a in agents})
    start = shanghai(2026, 8, 3, 9, 30)
    categories = ["delay", "damage", "loss", "billing", "information", "staff_attitude"]
    for i in range(40):
        filed = start + dt.timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 8))
        body = complaint_body(
            customer_id=rng.choice(["cust-1", "cust-2", "cust-3"]),
            category=rng.choice(categories),
            channel=rng.choice(["web", "mobile", "call_center", "email"]),
            order_ids=[f"o{i}"],
            claimed_amount=str(rng.choice([0, 500, 20000])),
        )
        async with env.runtime.transaction() as session:
            complaint = await intake.file_complaint(session, ComplaintCreate(**body), settings=env.settings, now=filed)
            cid, team, agent = complaint.id, complaint.team_id, complaint.agent_id
        actor = Actor(agent or "sup", "agent" if agent else "supervisor", team)
        if rng.random() < 0.8:
            async with env.runtime.transaction() as session:
                await lifecycle.reply(
                    session, cid, "hello", actor=actor, settings=env.settings, now=filed + dt.timedelta(minutes=rng.randint(5, 600))
                )
        if rng.random() < 0.7:
            resolved_at = filed + dt.timedelta(hours=rng.randint(11, 90))
            async with env.runtime.transaction() as session:
                complaint = await lifecycle.resolve(
                    session, cid, outcome="ok", compensation_amount=None, message=None, actor=actor, settings=env.settings, now=resolved_at
                )
                token = survey_links.link_token(complaint, env.settings)
            if rng.random() < 0.6:
                async with env.runtime.transaction() as session:
                    await lifecycle.answer_survey(
                        session,
                        cid,
                        score=rng.randint(1, 5),
                        comment=None,
                        token=token,
                        actor=None,
                        settings=env.settings,
                        now=resolved_at + dt.timedelta(hours=2),
                    )
            if rng.random() < 0.3:
                async with env.runtime.transaction() as session:
                    await lifecycle.reopen(
                        session, cid, reason="again", actor=actor, settings=env.settings, now=resolved_at + dt.timedelta(days=1)
                    )


def independent_figures(complaints, clocks, managers, date_from, date_to):
    lo = dt.datetime.combine(date_from, dt.time(), tzinfo=dt.UTC)
    hi = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    rows = [c for c in complaints if lo <= c.filed_at < hi and c.merged_into is None]
    ids = {c.id for c in rows}

    def counter(attr):
        out = {}
        for c in rows:
            out[getattr(c, attr)] = out.get(getattr(c, attr), 0) + 1
        return dict(sorted(out.items()))

    months = {}
    for c in rows:
        key = c.filed_at.strftime("%Y-%m")
        months[key] = months.get(key, 0) + 1

    def pct(values, p):
        if not values:
            return None
        values = sorted(values)
        return round(values[math.ceil(p * len(values) / 100) - 1], 2)

    first = [
        k.consumed_us / 6e7
        for k in clocks
        if k.complaint_id in ids
        and k.kind == "first_response"
        and k.stopped_at is not None
        and next(c for c in rows if c.id == k.complaint_id).first_response_at is not None
    ]
    resolution = [
        k.consumed_us / 6e7
        for k in clocks
        if k.complaint_id in ids
        and k.kind == "resolution"
        and k.stopped_at is not None
        and next(c for c in rows if c.id == k.complaint_id).resolved_at is not None
    ]

    def csat(attr):
        groups = {}
        for c in rows:
            if c.survey_score is not None:
                key = managers.get(c.customer_id) or "unassigned" if attr == "account_manager" else getattr(c, attr)
                groups.setdefault(key, []).append(c.survey_score)
        return {
            k: {
                "responses": len(v),
                "mean_score": round(statistics.mean(v), 4),
                "satisfied_rate": round(sum(s >= 4 for s in v) / len(v), 4),
            }
            for k, v in sorted(groups.items())
        }

    def sla(attr):
        met = sum(getattr(c, attr) is True for c in rows)
        missed = sum(getattr(c, attr) is False for c in rows)
        return {"met": met, "missed": missed, "rate": round(met / (met + missed), 4) if met + missed else None}

    resolved = sum(c.resolved_at is not None for c in rows)
    reopened = sum(c.reopen_count > 0 for c in rows)
    return {
        "total": len(rows),
        "by_category": counter("category"),
        "by_channel": counter("channel"),
        "by_team": counter("team_id"),
        "by_period": dict(sorted(months.items())),
        "sla": {"first_response": sla("first_response_within_sla"), "resolution": sla("resolution_within_sla")},
        "first_response_minutes": {"p50": pct(first, 50), "p90": pct(first, 90), "p95": pct(first, 95), "count": len(first)},
        "resolution_minutes": {
            "p50": pct(resolution, 50),
            "p90": pct(resolution, 90),
            "p95": pct(resolution, 95),
            "count": len(resolution),
        },
        "reopen": {"resolved": resolved, "reopened": reopened, "rate": round(reopened / resolved, 4) if resolved else None},
        "csat": {"by_team": csat("team_id"), "by_agent": csat("resolved_by"), "by_account_manager": csat("account_manager")},
    }


async def test_report_equals_figures_computed_from_rows(env):
    await build_history(env)
    date_from, date_to = dt.date(2026, 8, 10), dt.date(2026, 9, 20)
    async with env.db.sessions() as session:
        report = await reports.complaint_report(session, date_from=date_from, date_to=date_to, period="month")
        complaints = (await session.scalars(select(Complaint))).all()
        clocks = (await session.scalars(select(SlaClockRow))).all()
        managers = dict((await session.execute(select(DirectoryCustomer.id, DirectoryCustomer.account_manager))).all())
    expected = independent_figures(complaints, clocks, managers, date_from, date_to)
    assert set(expected["csat"]["by_account_manager"]) == {"am-zhang", "am-li", "unassigned"}
    assert expected["total"] > 10 and expected["reopen"]["reopened"] > 0 and expected["csat"]["by_agent"]
    assert expected["sla"]["resolution"]["missed"] > 0 and expected["sla"]["resolution"]["met"] > 0
    for key, value in expected.items():
        assert report[key] == value, key

    response = await env.client.get("/reports/complaints", params={"from": "2026-08-10", "to": "2026-09-20"}, headers=STAFF)
    assert response.status_code == 200
    assert response.json()["by_team"] == expected["by_team"]
    assert (await env.client.get("/reports/complaints")).status_code == 403
    weekly = await env.client.get("/reports/complaints", params={"period": "week"}, headers=STAFF)
    assert sum(weekly.json()["by_period"].values()) == weekly.json()["total"] == len(complaints)
