"""The status lookup writes its JSON straight from rows (no response models on the hot path): every field must be
what the response models give (GET /complaints/{id}, /timeline, built with pydantic), for resolved complaints with
amounts, attachments, clocks and the customer view, by every key, and after customer merges. Both databases."""

from __future__ import annotations

from contextlib import asynccontextmanager

import orjson
import pytest

from complaints_support import ALL_WEEK, STAFF, agent_headers, complaint_body, seed_customer, seed_team
from crm_complaints.complaints import api, directory
from crm_complaints.complaints.schemas import ComplaintOut, CustomerComplaintOut, CustomerTimelineEntryOut, TimelineEntryOut

AS_CUSTOMER = {"X-Actor-Id": "cust-1", "X-Actor-Role": "customer"}


@asynccontextmanager
async def env_behind_a_proxy(database_factory, postgres_available, label: str, **overrides):
    """A complaints env on PostgreSQL reached through a TCP proxy the test can cut: (env, proxy)."""
    from sqlalchemy.engine import make_url

    from complaints_support import close_env, make_env, migrated_url
    from crm_devbroker.testing import TcpProxy

    if not postgres_available:
        pytest.skip("needs PostgreSQL")
    target = make_url(await migrated_url(database_factory, "postgres", label))
    proxy = await TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    env = await make_env(
        database_factory, "postgres", url=target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), **overrides
    )
    try:
        yield env, proxy
    finally:
        await close_env(env)
        await proxy.stop()


async def _file_resolved(env) -> dict:
    await seed_customer(env.db, "cust-1", phone="13800138000", region="East")
    await seed_team(env.db, "transport", {"agent-t1": ALL_WEEK})
    await seed_team(env.db, "claims", {"agent-c1": ALL_WEEK})
    await seed_team(env.db, "customer_service", {})
    filed = (
        await env.client.post(
            "/complaints", json=complaint_body(tracking_numbers=["SF-RES-1"], order_ids=["O-R1", "O-R2"], claimed_amount="1234.50")
        )
    ).json()
    me = agent_headers(filed["agent_id"], filed["team_id"])
    await env.client.post(f"/complaints/{filed['id']}/notes", json={"body": "INTERNAL: check the scan"}, headers=me)
    resolved = await env.client.post(
        f"/complaints/{filed['id']}/resolve",
        json={"outcome": "refund 退款", "compensation_amount": "25.50", "message": "Refunded."},
        headers=me,
    )
    assert resolved.status_code == 200, resolved.text
    return resolved.json()


async def _single(env, cid: str, headers: dict, params: dict) -> tuple[dict, list]:
    complaint = (await env.client.get(f"/complaints/{cid}", params=params, headers=headers)).json()
    timeline = (await env.client.get(f"/complaints/{cid}/timeline", params=params, headers=headers)).json()
    return complaint, timeline


async def test_lookup_rows_equal_the_response_models_in_both_views(env):
    resolved = await _file_resolved(env)
    cid = resolved["id"]
    assert resolved["compensation_amount"] == "25.50" and resolved["claimed_amount"] == "1234.50" and resolved["resolved_at"]
    for headers, params in ((STAFF, {}), (AS_CUSTOMER, {"view": "customer"}), (STAFF, {"view": "customer"})):
        complaint, timeline = await _single(env, cid, headers, params)
        for key in (
            {"tracking_number": "SF-RES-1"},
            {"tracking_number": "O-R2"},
            {"number": resolved["number"]},
            {"customer_id": "cust-1"},
            {"phone": "+86 138 0013 8000"},
        ):
            response = await env.client.get("/complaints/lookup", params={**key, **params}, headers=headers)
            assert response.status_code == 200 and response.headers["content-type"] == "application/json"
            page = response.json()
            assert [row["complaint"] for row in page] == [complaint], key
            assert page[0]["timeline"] == timeline
    staff_complaint, staff_timeline = await _single(env, cid, STAFF, {})
    ComplaintOut.model_validate(staff_complaint)  # the documented schema still describes the rows
    assert staff_complaint["clocks"] and staff_complaint["attachments"] and staff_complaint["reporter"]["name"] == "Li Lei"
    assert all(TimelineEntryOut.model_validate(e) for e in staff_timeline)
    assert any("INTERNAL" in (e["body"] or "") for e in staff_timeline)
    customer_complaint, customer_timeline = await _single(env, cid, AS_CUSTOMER, {"view": "customer"})
    CustomerComplaintOut.model_validate(customer_complaint)
    assert all(set(e) == set(CustomerTimelineEntryOut.model_fields) for e in customer_timeline)
    assert not any("INTERNAL" in (e["body"] or "") for e in customer_timeline)


async def test_lookup_json_encodes_like_pydantic():
    import datetime as dt
    from decimal import Decimal
    from types import SimpleNamespace

    at = dt.datetime(2026, 3, 1, 8, 30, 0, 1230, tzinfo=dt.UTC)
    row = SimpleNamespace(
        id="c1",
        number="C1",
        customer_id="cust",
        category="delay",
        priority="P1",
        channel="web",
        status="resolved",
        team_id=None,
        agent_id="a",
        description="d 描述",
        description_key="description.shipment_lost",
        description_params={"order_id": "O-1"},
        desired_outcome=None,
        claimed_amount=Decimal("1E+2"),
        attachments=None,
        reporter_name=None,
        reporter_phone="+86",
        reporter_email=None,
        language="en",
        duplicate_of=None,
        merged_into=None,
        filed_at=at,
        first_response_at=None,
        resolved_at=at,
        closed_at=None,
        outcome="o",
        compensation_amount=Decimal("0.10"),
        reopen_count=1,
        survey_score=None,
    )
    clock = SimpleNamespace(
        kind="resolution", target_minutes=60, deadline_at=at, stopped_at=None, paused=True, escalation_level=2, breached_at=at
    )
    entry = SimpleNamespace(
        at=at,
        kind="status_changed",
        visibility="customer",
        actor_id=None,
        body="Status new → in progress",
        data=None,
        message_key="timeline.status_changed",
        message_params={"status_from": "new", "status_to": "in_progress"},
    )
    mine = orjson.loads(
        api.json_response(
            [
                api.complaint_json(vars(row), (["o"], ["t"]), [clock]),
                api.customer_complaint_json(vars(row), ([], [])),
                api.timeline_json(entry, False),
                api.timeline_json(entry, True),
            ]
        ).body
    )
    # (lookup rows are mappings); the model path the single-complaint endpoints take (refs and clocks given: no session needed)
    models = [
        (await api.complaint_out(None, row, refs=(["o"], ["t"]), clocks=[clock])).model_dump(mode="json"),
        (await api.customer_out(None, row, refs=([], []))).model_dump(mode="json"),
        api._entry(entry, False),
        api._entry(entry, True),
    ]
    assert mine == models
    assert mine[1]["status_text"] == "Your complaint has been resolved"


async def test_lookup_by_customer_follows_merges(env):
    await seed_customer(env.db, "cust-1", phone="13800138000")
    await seed_customer(env.db, "cust-old")
    await seed_team(env.db, "transport", {"agent-t1": ALL_WEEK})
    await seed_team(env.db, "claims", {"agent-c1": ALL_WEEK})
    await seed_team(env.db, "customer_service", {})
    old = (await env.client.post("/complaints", json=complaint_body(customer_id="cust-old", tracking_numbers=["SF-OLD"]))).json()
    new = (await env.client.post("/complaints", json=complaint_body(customer_id="cust-1", tracking_numbers=["SF-NEW"]))).json()
    async with env.db.transaction() as session:
        await directory.apply_merged(session, "cust-1", "cust-old")
    for asked in ("cust-old", "cust-1"):
        page = (await env.client.get("/complaints/lookup", params={"customer_id": asked}, headers=STAFF)).json()
        assert sorted(r["complaint"]["id"] for r in page) == sorted([old["id"], new["id"]]), asked
    # a customer sees its own complaints whatever key it sends, and nothing of another customer
    other = {"X-Actor-Id": "cust-2", "X-Actor-Role": "customer"}
    assert (await env.client.get("/complaints/lookup", params={"tracking_number": "SF-NEW"}, headers=other)).json() == []
    assert (await env.client.get("/complaints/lookup", params={"customer_id": "cust-1"}, headers=other)).json() == []


async def test_lookup_survives_dropped_database_connections_without_pre_ping(database_factory, postgres_available):
    """With the pool's pre-ping off, a pooled connection that the database dropped fails on first use; the lookup
    runs again on a fresh connection instead of answering 500."""
    async with env_behind_a_proxy(database_factory, postgres_available, "lookup_drop", db_pool_pre_ping=False) as (env, proxy):
        await seed_customer(env.db, "cust-1")
        await seed_team(env.db, "transport", {"agent-t1": ALL_WEEK})
        await seed_team(env.db, "claims", {"agent-c1": ALL_WEEK})
        await seed_team(env.db, "customer_service", {})
        filed = (await env.client.post("/complaints", json=complaint_body(tracking_numbers=["SF-DROP"]))).json()
        assert (await env.client.get("/complaints/lookup", params={"tracking_number": "SF-DROP"}, headers=STAFF)).status_code == 200
        proxy.drop_connections()  # every pooled connection is now dead
        again = await env.client.get("/complaints/lookup", params={"tracking_number": "SF-DROP"}, headers=STAFF)
        assert again.status_code == 200, again.text
        assert [r["complaint"]["id"] for r in again.json()] == [filed["id"]]


async def test_a_phone_without_digits_finds_nothing(env):
    """It normalises to no number at all: the lookup must not turn that into 'reporter_phone IS NULL' (every complaint
    filed without a phone), as the ORM comparison with None did before the statements were prebuilt."""
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "transport", {"agent-t1": ALL_WEEK})
    await seed_team(env.db, "claims", {"agent-c1": ALL_WEEK})
    await seed_team(env.db, "customer_service", {})
    filed = await env.client.post("/complaints", json=complaint_body(reporter=None, tracking_numbers=["SF-NOPHONE"]))
    assert filed.status_code == 201 and filed.json()["reporter"]["phone"] is None
    assert (await env.client.get("/complaints/lookup", params={"phone": "call me"}, headers=STAFF)).json() == []
    assert len((await env.client.get("/complaints/lookup", params={"tracking_number": "SF-NOPHONE"}, headers=STAFF)).json()) == 1


async def test_a_write_after_dropped_connections_fails_once_with_503_then_succeeds(database_factory, postgres_available):
    """The service runs without the pool's pre-ping by default: the first statement on a connection the database
    dropped fails. That request gets a 503 problem and writes nothing; the pool is invalidated, so the retry works."""
    from sqlalchemy import text

    async with env_behind_a_proxy(database_factory, postgres_available, "write_drop") as (env, proxy):
        assert env.settings.db_pool_pre_ping is False
        await seed_customer(env.db, "cust-1")
        await seed_team(env.db, "transport", {"agent-t1": ALL_WEEK})
        await seed_team(env.db, "claims", {"agent-c1": ALL_WEEK})
        await seed_team(env.db, "customer_service", {})
        assert (await env.client.post("/complaints", json=complaint_body(tracking_numbers=["SF-W1"]))).status_code == 201
        proxy.drop_connections()
        statuses = []
        for _ in range(3):
            response = await env.client.post("/complaints", json=complaint_body(tracking_numbers=["SF-W2"]))
            statuses.append(response.status_code)
            if response.status_code == 201:
                break
            assert response.status_code == 503 and response.json()["status"] == 503, response.text
        assert statuses == [503, 201], statuses  # the dead pooled connection fails once, then the pool reconnects
        async with env.db.sessions() as session:
            filed = await session.scalar(text("SELECT COUNT(*) FROM complaint_references WHERE value = 'SF-W2'"))
        assert filed == 1  # the failed attempt left nothing behind


async def test_lookup_while_the_database_is_unreachable_is_a_503_problem(database_factory, postgres_available):
    """The lookup reads straight through asyncpg: a database that refuses connections is 'unavailable, retry'
    (503 problem with Retry-After), as on the SQLAlchemy paths, not an unexpected 500."""
    async with env_behind_a_proxy(database_factory, postgres_available, "lookup_down") as (env, proxy):
        assert (await env.client.get("/complaints/lookup", params={"tracking_number": "SF-NONE"}, headers=STAFF)).json() == []
        proxy.drop_connections()
        await proxy.stop()  # nothing listens there any more
        down = await env.client.get("/complaints/lookup", params={"tracking_number": "SF-NONE"}, headers=STAFF)
        assert down.status_code == 503, down.text
        assert down.json()["type"] == "urn:crm:problem:database-unavailable" and down.headers["retry-after"] == "2"
