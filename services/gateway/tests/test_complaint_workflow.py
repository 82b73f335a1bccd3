"""Issue 19: a complaint worked end to end through the gateway in front of the real complaints service.

The admin sets up teams, agents and routing through the gateway; assigning moves a queued complaint out of
`new`; the agent replies, waits on the customer (the clocks pause), resolves; the customer adds a message
and reopens their own complaint, as docs/complaints.md says.
"""

from __future__ import annotations

import contextlib
import urllib.parse

import httpx
import orjson
import pytest
from sqlalchemy import select

from crm_common.outbox import outbox_table

pytest.importorskip("crm_complaints", reason="complaints service not installed")
complaints_support = pytest.importorskip("complaints_support", reason="complaints test helpers not on the path")

from crm_gateway.main import create_app  # noqa: E402
from crm_gateway.settings import GatewaySettings  # noqa: E402
from gateway_support import FakeUpstreams, auth  # noqa: E402

ALL_WEEK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
ALWAYS_OPEN = {"timezone": "Asia/Shanghai", "weekdays": list(range(7)), "periods": [["00:00", "24:00"]]}


@contextlib.asynccontextmanager
async def gateway_before_real_complaints(database_factory, gateway_db, db_kind: str = "sqlite", **settings_values):
    """The gateway app in front of the real complaints service (in-process), customer X1 known to both; yields (app, settings, env)."""
    env = await complaints_support.make_env(database_factory, db_kind)
    await complaints_support.seed_customer(env.db, "X1", phone="+8613800000011")
    settings = GatewaySettings(database_url=gateway_db, **settings_values)
    fakes = FakeUpstreams(extra_customers={"X1": {"id": "X1", "name": "Real X1", "account_manager": "am-9", "status": "active"}})
    app = create_app(settings, start_background=False, transports=fakes.transports(complaints=httpx.ASGITransport(app=env.app)))
    try:
        yield app, settings, env
    finally:
        await app.state.gateway.aclose()
        await app.state.runtime.db.dispose()
        await complaints_support.close_env(env)


@pytest.fixture
async def stack(database_factory, gateway_db, db_kind):
    async with gateway_before_real_complaints(database_factory, gateway_db, db_kind) as (app, settings, env):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            yield client, settings, env


def ok(response: httpx.Response, status: int = 200) -> dict | list:
    assert response.status_code == status, response.text
    return response.json()


async def test_admin_sets_up_teams_agents_and_routing_through_the_gateway(stack):
    client, settings, _ = stack
    admin = auth(settings, "admin", "admin-1")
    agent = auth(settings, "agent", "li-na", team="transport")
    team = ok(await client.put("/api/v1/teams/transport", headers=admin, json={"name": "Transport", "calendar": ALWAYS_OPEN}))
    assert team["calendar"]["timezone"] == "Asia/Shanghai"
    ok(await client.put("/api/v1/agents/li-na", headers=admin, json={"team_id": "transport", "name": "Li Na", "shifts": ALL_WEEK}))
    assert [a["id"] for a in ok(await client.get("/api/v1/agents", headers=agent, params={"team_id": "transport"}))] == ["li-na"]
    assert ok(await client.get("/api/v1/agents/li-na", headers=agent))["shifts"][0] == {"weekday": 0, "start": "00:00", "end": "24:00"}
    assert [t["id"] for t in ok(await client.get("/api/v1/teams", headers=agent))] == ["transport"]
    rules = ok(await client.put("/api/v1/routing-rules", headers=admin, json=[{"category": "damage", "team": "transport"}]))
    assert (
        rules
        == ok(await client.get("/api/v1/routing-rules", headers=agent))
        == [{"team": "transport", "name": None, "category": "damage", "region": None, "service_type": None, "position": 0}]
    )

    # bad input is a 4xx naming what is wrong, and changes nothing
    bad_calendar = await client.put("/api/v1/teams/transport", headers=admin, json={"calendar": {"periods": [["12:75", "13:00"]]}})
    assert bad_calendar.status_code == 422 and "12:75" in bad_calendar.text
    unknown_team = await client.put("/api/v1/agents/wu", headers=admin, json={"team_id": "nowhere"})
    assert unknown_team.status_code == 422 and unknown_team.json()["errors"][0]["loc"] == ["body", "team_id"]
    assert (await client.get("/api/v1/agents/wu", headers=admin)).status_code == 404
    assert (await client.put("/api/v1/routing-rules", headers=agent, json=[])).status_code == 403
    assert ok(await client.get("/api/v1/teams/transport", headers=admin))["calendar"]["periods"] == [["00:00", "24:00"]]


async def test_agent_works_a_complaint_and_the_customer_reopens_it(stack):
    client, settings, _ = stack
    admin = auth(settings, "admin", "admin-1")
    agent = auth(settings, "agent", "li-na", team="transport")
    customer = auth(settings, "customer", "portal-x1", customer_id="X1")
    filed = ok(
        await client.post(
            "/api/v1/complaints",
            headers=customer,
            json={"category": "delay", "description": "parcel two days late", "channel": "web", "tracking_numbers": ["SFW1"]},
        ),
        201,
    )
    assert "agent_id" not in filed and "clocks" not in filed  # the customer is answered in the customer view
    complaint = f"/api/v1/complaints/{filed['id']}"
    queued = ok(await client.get(complaint, headers=admin))
    assert (queued["status"], queued["team_id"], queued["agent_id"]) == ("new", "transport", None)  # nobody on shift yet

    ok(await client.put("/api/v1/teams/transport", headers=admin, json={"calendar": ALWAYS_OPEN}))
    ok(await client.put("/api/v1/agents/li-na", headers=admin, json={"team_id": "transport", "shifts": ALL_WEEK}))
    assigned = ok(await client.post(f"{complaint}/assign", headers=agent, json={}))
    assert (assigned["status"], assigned["agent_id"]) == ("assigned", "li-na")

    replied = ok(await client.post(f"{complaint}/replies", headers=agent, json={"body": "We are checking with the driver."}))
    assert replied["status"] == "in_progress" and replied["first_response_at"] is not None
    waiting = ok(await client.post(f"{complaint}/status", headers=agent, json={"status": "waiting_on_customer", "reason": "photo?"}))
    resolution_clock = next(c for c in waiting["clocks"] if c["kind"] == "resolution")
    assert waiting["status"] == "waiting_on_customer" and resolution_clock["paused"] and resolution_clock["deadline_at"] is None

    answered = ok(await client.post(f"{complaint}/customer-messages", headers=customer, json={"body": "Photo of the box attached."}))
    assert answered["status"] == "in_progress" and "clocks" not in answered  # the customer's own view
    resumed = next(c for c in ok(await client.get(complaint, headers=agent))["clocks"] if c["kind"] == "resolution")
    assert not resumed["paused"] and resumed["deadline_at"] is not None

    resolved = ok(await client.post(f"{complaint}/resolve", headers=agent, json={"outcome": "redelivered", "message": "Delivered today."}))
    assert resolved["status"] == "resolved"
    reopened = ok(await client.post(f"{complaint}/reopen", headers=customer, json={"reason": "One box is still missing."}))
    assert reopened["status"] == "in_progress" and "agent_id" not in reopened
    ok(await client.post(f"{complaint}/resolve", headers=agent, json={"outcome": "refunded"}))
    closed = ok(await client.post(f"{complaint}/close", headers=agent, json={"reason": "customer confirmed"}))
    assert closed["status"] == "closed"
    kinds = [e["kind"] for e in ok(await client.get(f"{complaint}/timeline", headers=customer))]
    assert {"reply", "customer_message", "resolved", "reopened", "closed"} <= set(kinds)

    other = auth(settings, "customer", "portal-x2", customer_id="X2")
    assert (await client.post(f"{complaint}/reopen", headers=other, json={"reason": "x"})).status_code in (403, 404)
    assert (await client.post(f"{complaint}/customer-messages", headers=other, json={"body": "x"})).status_code in (403, 404)


async def resolved_events(env) -> list[dict]:
    async with env.db.sessions() as session:
        rows = (
            await session.execute(
                select(outbox_table.c.body).where(outbox_table.c.event_type == "ComplaintResolved").order_by(outbox_table.c.id)
            )
        ).all()
    return [orjson.loads(r.body) for r in rows]


async def test_customer_answers_the_survey_from_the_link_without_signing_in(stack):
    from crm_complaints.complaints.models import Complaint
    from crm_complaints.survey import service as survey_links

    client, settings, env = stack
    admin = auth(settings, "admin", "admin-1")
    customer = auth(settings, "customer", "portal-x1", customer_id="X1")
    ok(await client.put("/api/v1/teams/transport", headers=admin, json={"calendar": ALWAYS_OPEN}))
    ok(await client.put("/api/v1/agents/li-na", headers=admin, json={"team_id": "transport", "shifts": ALL_WEEK}))
    filed = ok(
        await client.post("/api/v1/complaints", headers=customer, json={"category": "delay", "description": "late", "channel": "web"}), 201
    )
    ok(await client.post(f"/api/v1/complaints/{filed['id']}/resolve", headers=admin, json={"outcome": "redelivered"}))
    link = urllib.parse.urlsplit((await resolved_events(env))[-1]["payload"]["survey_url"])
    token = urllib.parse.parse_qs(link.query)["token"][0]
    survey = f"/api/v1/survey/{filed['id']}"

    page = await client.get(f"/survey/{filed['id']}", params={"token": token})
    assert page.status_code == 200 and 'src="/console/static/survey.js"' in page.text and "<script>" not in page.text
    shown = ok(await client.get(survey, params={"token": token}))  # no Authorization header at all
    assert shown == {**shown, "complaint_number": filed["number"], "answered": False, "outcome": "redelivered"}
    assert "customer_id" not in shown and "description" not in shown

    expires, _, signature = token.partition(".")
    forged = f"{int(expires) + 86400}.{signature}"  # a later expiry with the old signature
    for bad in ("nonsense", forged, token[:-1] + ("0" if token[-1] != "0" else "1")):
        assert (await client.post(survey, json={"token": bad, "score": 5})).status_code == 403
    async with env.db.sessions() as session:
        complaint = await session.get(Complaint, filed["id"])
    expired = survey_links.link_token(complaint, env.settings.model_copy(update={"survey_valid_days": -1}))
    assert (await client.get(survey, params={"token": expired})).status_code == 410
    assert (await client.post(survey, json={"token": token, "score": 9})).status_code == 422

    answered = ok(await client.post(survey, json={"token": token, "score": 4, "comment": "快"}))
    assert answered["score"] == 4
    assert (await client.post(survey, json={"token": token, "score": 5})).status_code == 409  # single use
    assert ok(await client.get(survey, params={"token": token}))["answered"] is True

    ok(await client.post(f"/api/v1/complaints/{filed['id']}/reopen", headers=customer, json={"reason": "missing box"}))
    ok(await client.post(f"/api/v1/complaints/{filed['id']}/resolve", headers=admin, json={"outcome": "refunded"}))
    assert (await client.get(survey, params={"token": token})).status_code == 403  # a new resolution voids the old link


async def test_admin_edits_a_routing_rule_and_the_next_complaint_follows_it(stack):
    client, settings, _ = stack
    admin = auth(settings, "admin", "admin-1")
    agent = auth(settings, "agent", "li-na", team="transport")
    for team in ("transport", "claims"):
        ok(await client.put(f"/api/v1/teams/{team}", headers=admin, json={"calendar": ALWAYS_OPEN}))
    ok(await client.put("/api/v1/agents/zhao", headers=admin, json={"team_id": "claims", "shifts": ALL_WEEK}))
    body = {"customer_id": "X1", "category": "delay", "description": "late again", "channel": "call_center"}
    before = ok(await client.post("/api/v1/complaints", headers=agent, json=body), 201)
    assert before["team_id"] == "transport"  # the built-in rule for delays
    ok(await client.put("/api/v1/routing-rules", headers=admin, json=[{"category": "delay", "team": "claims"}]))
    after = ok(await client.post("/api/v1/complaints", headers=agent, json={**body, "description": "late a third time"}), 201)
    assert (after["team_id"], after["agent_id"], after["status"]) == ("claims", "zhao", "assigned")
