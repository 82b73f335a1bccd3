"""Intake, idempotency, customers, duplicates, agent actions, lookup, survey: through the ASGI app on both databases."""

import asyncio

import orjson
from sqlalchemy import func, select

from complaints_support import ALL_WEEK, STAFF, agent_headers, complaint_body, seed_customer, seed_team
from crm_common.idempotency import idempotency_table
from crm_common.outbox import outbox_table
from crm_complaints.complaints.models import Complaint, TimelineEntry


async def outbox_events(env, event_type=None):
    async with env.db.sessions() as session:
        query = select(outbox_table.c.event_type, outbox_table.c.body).order_by(outbox_table.c.id)
        rows = (await session.execute(query)).all()
    return [orjson.loads(r.body) for r in rows if event_type is None or r.event_type == event_type]


async def count(env, model):
    async with env.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def setup_basic(env):
    await seed_customer(env.db, "cust-1", phone="13800138000", email="Buyer@Example.com", region="East")
    await seed_team(env.db, "transport", {"agent-t1": ALL_WEEK, "agent-t2": ALL_WEEK})
    await seed_team(env.db, "claims", {"agent-c1": ALL_WEEK})
    await seed_team(env.db, "customer_service", {})


async def test_every_channel_files_a_complaint(env):
    await setup_basic(env)
    numbers = set()
    for channel in ("web", "mobile", "call_center", "email"):
        response = await env.client.post("/complaints", json=complaint_body(channel=channel, order_ids=[f"ORD-{channel}"]))
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["channel"] == channel
        assert body["customer_id"] == "cust-1"
        assert body["team_id"] == "transport"
        assert body["status"] == "assigned" and body["agent_id"] in {"agent-t1", "agent-t2"}
        assert body["reporter"]["phone"] == "+8613800138000"
        assert {c["kind"] for c in body["clocks"]} == {"first_response", "resolution"}
        assert all(c["deadline_at"] for c in body["clocks"])
        numbers.add(body["number"])
    assert len(numbers) == 4
    filed = await outbox_events(env, "ComplaintFiled")
    assert sorted(e["payload"]["channel"] for e in filed) == ["call_center", "email", "mobile", "web"]
    assert all(e["key"] == "cust-1" for e in filed)
    assigned = await outbox_events(env, "ComplaintAssigned")
    assert len(assigned) == 4
    # least open load spreads the four complaints over the two agents on shift
    assert sorted(e["payload"]["agent"] for e in assigned).count("agent-t1") == 2


async def test_retry_with_same_idempotency_key_returns_the_first_complaint(env):
    await setup_basic(env)
    headers = {"Idempotency-Key": "mobile-retry-1"}
    first = await env.client.post("/complaints", json=complaint_body(channel="mobile"), headers=headers)
    second = await env.client.post("/complaints", json=complaint_body(channel="mobile"), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content and second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"] == f"/complaints/{first.json()['id']}"
    assert await count(env, Complaint) == 1
    assert len(await outbox_events(env, "ComplaintFiled")) == 1
    other = await env.client.post("/complaints", json=complaint_body(channel="mobile", description="something else"), headers=headers)
    assert other.status_code == 422
    assert other.json()["type"] == "urn:crm:problem:idempotency-key-reused"
    assert await count(env, Complaint) == 1
    by_another_caller = await env.client.post("/complaints", json=complaint_body(channel="mobile"), headers=headers | STAFF)
    assert by_another_caller.status_code == 201 and by_another_caller.json()["id"] != first.json()["id"]


async def test_a_retried_reply_note_or_customer_message_is_added_once(env):
    await setup_basic(env)
    body = (await env.client.post("/complaints", json=complaint_body())).json()
    cid = body["id"]
    me = agent_headers(body["agent_id"], "transport")
    customer = {"X-Actor-Id": "cust-1", "X-Actor-Role": "customer", "X-Customer-Id": "cust-1"}
    for path, text, who in (
        ("replies", "We are checking with the driver.", me),
        ("notes", "driver blames the weather", me),
        ("customer-messages", "The parcel is still missing.", customer),
    ):
        headers = who | {"Idempotency-Key": f"retry-{path}"}
        first = await env.client.post(f"/complaints/{cid}/{path}", json={"body": text}, headers=headers)
        again = await env.client.post(f"/complaints/{cid}/{path}", json={"body": text}, headers=headers)
        assert first.status_code == again.status_code == 200, first.text
        assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
        changed = await env.client.post(f"/complaints/{cid}/{path}", json={"body": text + "!"}, headers=headers)
        assert changed.status_code == 422 and changed.json()["type"] == "urn:crm:problem:idempotency-key-reused"
    async with env.db.sessions() as session:
        bodies = (await session.scalars(select(TimelineEntry.body).where(TimelineEntry.complaint_id == cid))).all()
    for text in ("We are checking with the driver.", "driver blames the weather", "The parcel is still missing."):
        assert bodies.count(text) == 1, (text, bodies)


async def test_concurrent_retries_file_once(env):
    await setup_basic(env)
    headers = {"Idempotency-Key": "race-1"}
    responses = await asyncio.gather(*[env.client.post("/complaints", json=complaint_body(), headers=headers) for _ in range(4)])
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count(env, Complaint) == 1
    assert await count(env, idempotency_table) == 1


async def test_customer_by_phone_or_email_and_bad_input_never_half_writes(env):
    await setup_basic(env)
    by_phone = await env.client.post("/complaints", json=complaint_body(customer_id=None, phone="138-0013-8000", order_ids=["A"]))
    assert by_phone.status_code == 201 and by_phone.json()["customer_id"] == "cust-1"
    by_email = await env.client.post("/complaints", json=complaint_body(customer_id=None, email="buyer@example.COM", order_ids=["B"]))
    assert by_email.status_code == 201 and by_email.json()["customer_id"] == "cust-1"
    before = (await count(env, Complaint), await count(env, TimelineEntry), len(await outbox_events(env)))

    unknown = await env.client.post("/complaints", json=complaint_body(customer_id=None, phone="13900000000", email="x@y.z", reporter=None))
    assert unknown.status_code == 422
    assert unknown.json()["tried"] == [{"by": "phone", "value": "+8613900000000"}, {"by": "email", "value": "x@y.z"}]
    unknown_id = await env.client.post("/complaints", json=complaint_body(customer_id="nobody"))
    assert unknown_id.status_code == 422 and unknown_id.json()["tried"][0] == {"by": "customer_id", "value": "nobody"}
    category = await env.client.post("/complaints", json=complaint_body(category="weather"))
    assert category.status_code == 422
    assert "damage" in category.json()["allowed"] and "billing" in category.json()["allowed"]
    channel = await env.client.post("/complaints", json=complaint_body(channel="fax"))
    assert channel.status_code == 422
    negative = await env.client.post("/complaints", json=complaint_body(claimed_amount="-5"))
    assert negative.status_code == 422
    for url in ("javascript:alert(1)", "data:text/html,<b>x</b>", "file:///etc/passwd", "https://"):
        script = await env.client.post("/complaints", json=complaint_body(attachments=[{"filename": "x.png", "url": url}]))
        assert script.status_code == 422 and "url" in script.text, url

    after = (await count(env, Complaint), await count(env, TimelineEntry), len(await outbox_events(env)))
    assert after == before
    linked = await env.client.post(
        "/complaints", json=complaint_body(order_ids=["L"], attachments=[{"filename": "x.png", "url": "https://files.example/x.png"}])
    )
    assert linked.status_code == 201 and linked.json()["attachments"][0]["url"] == "https://files.example/x.png"


async def test_likely_duplicates_are_linked_and_can_be_merged(env):
    await setup_basic(env)
    first = (await env.client.post("/complaints", json=complaint_body(order_ids=["ORD-9"], tracking_numbers=["T1"]))).json()
    second = (
        await env.client.post("/complaints", json=complaint_body(order_ids=["ORD-9"], tracking_numbers=["T2"], channel="email"))
    ).json()
    other_category = (await env.client.post("/complaints", json=complaint_body(order_ids=["ORD-9"], category="billing"))).json()
    assert second["duplicate_of"] == first["id"]
    assert first["duplicate_of"] is None and other_category["duplicate_of"] is None

    merged = await env.client.post(
        f"/complaints/{second['id']}/merge", json={"into": first["id"], "reason": "same shipment"}, headers=STAFF
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["id"] == first["id"]
    assert sorted(merged.json()["tracking_numbers"]) == ["T1", "T2"]
    source = (await env.client.get(f"/complaints/{second['id']}")).json()
    assert source["status"] == "closed" and source["merged_into"] == first["id"]
    closed = await outbox_events(env, "ComplaintClosed")
    assert [e["payload"]["complaint_id"] for e in closed] == [second["id"]]
    again = await env.client.post(f"/complaints/{second['id']}/merge", json={"into": first["id"]}, headers=STAFF)
    assert again.status_code == 409


async def test_agent_workflow_reply_note_wait_resolve_survey_close_reopen(env):
    await setup_basic(env)
    body = (await env.client.post("/complaints", json=complaint_body())).json()
    cid, agent = body["id"], body["agent_id"]
    me = agent_headers(agent, "transport")

    # no identity -> 401, customer role -> 403, another team's agent -> 403
    assert (await env.client.post(f"/complaints/{cid}/notes", json={"body": "x"})).status_code == 401
    assert (
        await env.client.post(f"/complaints/{cid}/notes", json={"body": "x"}, headers={"X-Actor-Id": "cust-1", "X-Actor-Role": "customer"})
    ).status_code == 403
    foreign = await env.client.post(f"/complaints/{cid}/replies", json={"body": "hi"}, headers=agent_headers("agent-c1", "claims"))
    assert foreign.status_code == 403
    assert foreign.json()["complaint_team"] == "transport"

    reply = await env.client.post(f"/complaints/{cid}/replies", json={"body": "We are checking with the driver."}, headers=me)
    assert reply.status_code == 200
    assert reply.json()["status"] == "in_progress" and reply.json()["first_response_at"]
    first_clock = next(c for c in reply.json()["clocks"] if c["kind"] == "first_response")
    assert first_clock["stopped_at"] and first_clock["deadline_at"] is None
    assert (await env.client.post(f"/complaints/{cid}/notes", json={"body": "driver blames the weather"}, headers=me)).status_code == 200

    waiting = await env.client.post(
        f"/complaints/{cid}/status", json={"status": "waiting_on_customer", "reason": "need photos"}, headers=me
    )
    assert waiting.status_code == 200
    resolution_clock = next(c for c in waiting.json()["clocks"] if c["kind"] == "resolution")
    assert resolution_clock["paused"] and resolution_clock["deadline_at"] is None
    back = await env.client.post(f"/complaints/{cid}/status", json={"status": "in_progress"}, headers=me)
    assert next(c for c in back.json()["clocks"] if c["kind"] == "resolution")["deadline_at"]

    invalid = await env.client.post(f"/complaints/{cid}/close", json={}, headers=me)
    assert invalid.status_code == 409
    bad_status = await env.client.post(f"/complaints/{cid}/status", json={"status": "new"}, headers=me)
    assert bad_status.status_code == 409

    resolved = await env.client.post(
        f"/complaints/{cid}/resolve",
        json={"outcome": "refund express fee", "compensation_amount": "25.50", "message": "Refunded."},
        headers=me,
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    event = (await outbox_events(env, "ComplaintResolved"))[0]["payload"]
    assert event["compensation_amount"] == "25.50" and event["within_sla"] is True
    survey_url = event["survey_url"]
    assert cid in survey_url and "token=" in survey_url
    token = survey_url.split("token=")[1]

    assert (await env.client.post(f"/complaints/{cid}/survey", json={"score": 4, "token": "wrong"})).status_code == 403
    assert (await env.client.post(f"/complaints/{cid}/survey", json={"score": 6, "token": token})).status_code == 422
    answered = await env.client.post(f"/complaints/{cid}/survey", json={"score": 4, "comment": "ok", "token": token})
    assert answered.status_code == 200
    assert (await env.client.post(f"/complaints/{cid}/survey", json={"score": 5, "token": token})).status_code == 409
    survey_event = (await outbox_events(env, "SurveyAnswered"))[0]["payload"]
    assert survey_event["score"] == 4 and survey_event["team"] == "transport" and survey_event["agent"] == agent

    closed = await env.client.post(f"/complaints/{cid}/close", json={}, headers=me)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    reopened = await env.client.post(
        f"/complaints/{cid}/reopen", json={"reason": "refund never arrived"}, headers={"X-Actor-Id": "cust-1", "X-Actor-Role": "customer"}
    )
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "in_progress" and "clocks" not in reopened.json()  # the customer is answered in their view
    staff_view = (await env.client.get(f"/complaints/{cid}", headers=me)).json()
    assert staff_view["reopen_count"] == 1
    clocks = {c["kind"]: c for c in staff_view["clocks"]}
    assert clocks["resolution"]["deadline_at"] and clocks["resolution"]["stopped_at"] is None
    assert clocks["first_response"]["stopped_at"] and clocks["first_response"]["deadline_at"] is None  # never restarts
    types = [e["type"] for e in await outbox_events(env)]
    assert types == ["ComplaintFiled", "ComplaintAssigned", "ComplaintResolved", "SurveyAnswered", "ComplaintClosed", "ComplaintReopened"]
    supervisor = await env.client.post(
        f"/complaints/{cid}/notes",
        json={"body": "watching"},
        headers={"X-Actor-Id": "sup", "X-Actor-Role": "supervisor", "X-Actor-Team": "claims"},
    )
    assert supervisor.status_code == 200


async def test_lookup_by_tracking_number_and_phone_with_timeline_and_customer_view(env):
    await setup_basic(env)
    await seed_customer(env.db, "cust-2", phone="13911112222")
    mine = (await env.client.post("/complaints", json=complaint_body(tracking_numbers=["SF999"], order_ids=["O-77"]))).json()
    (
        await env.client.post(
            "/complaints",
            json=complaint_body(customer_id="cust-2", tracking_numbers=["SF000"], order_ids=["O-1"], reporter={"phone": "13911112222"}),
        )
    )
    me = agent_headers(mine["agent_id"], "transport")
    await env.client.post(f"/complaints/{mine['id']}/notes", json={"body": "INTERNAL: customer is difficult"}, headers=me)
    await env.client.post(f"/complaints/{mine['id']}/replies", json={"body": "We found your parcel."}, headers=me)

    by_tracking = (await env.client.get("/complaints/lookup", params={"tracking_number": "SF999"}, headers=STAFF)).json()
    assert [r["complaint"]["id"] for r in by_tracking] == [mine["id"]]
    kinds = [e["kind"] for e in by_tracking[0]["timeline"]]
    assert kinds[:2] == ["filed", "assigned"] and "note" in kinds and "reply" in kinds

    by_phone = (await env.client.get("/complaints/lookup", params={"phone": "+86 139 1111 2222"}, headers=STAFF)).json()
    assert [r["complaint"]["customer_id"] for r in by_phone] == ["cust-2"]
    by_number = (await env.client.get("/complaints/lookup", params={"number": mine["number"].lower()}, headers=STAFF)).json()
    assert [r["complaint"]["id"] for r in by_number] == [mine["id"]]
    by_customer = (await env.client.get("/complaints/lookup", params={"customer_id": "cust-1"}, headers=STAFF)).json()
    assert [r["complaint"]["id"] for r in by_customer] == [mine["id"]]
    assert (await env.client.get("/complaints/lookup", headers=STAFF)).status_code == 422

    customer = await env.client.get(f"/complaints/{mine['id']}/timeline", params={"view": "customer"})
    texts = [e["body"] for e in customer.json()]
    assert "We found your parcel." in texts
    assert not any("INTERNAL" in (t or "") for t in texts)
    assert "assigned" not in [e["kind"] for e in customer.json()]
    agent_view = (await env.client.get(f"/complaints/{mine['id']}/timeline", headers=STAFF)).json()
    assert any("INTERNAL" in (e["body"] or "") for e in agent_view)

    as_customer = {"X-Actor-Id": "cust-1", "X-Actor-Role": "customer"}
    own = (await env.client.get("/complaints/lookup", params={"tracking_number": "SF999"}, headers=as_customer)).json()
    assert own[0]["complaint"]["status_text"] == "您的投诉正在处理中"
    assert all("INTERNAL" not in (e["body"] or "") for e in own[0]["timeline"])
    english = (await env.client.get(f"/complaints/{mine['id']}", params={"view": "customer", "lang": "en"})).json()
    assert english["status_text"] == "We are working on your complaint" and "agent_id" not in english
    other = await env.client.get(f"/complaints/{mine['id']}", headers={"X-Actor-Id": "cust-2", "X-Actor-Role": "customer"})
    assert other.status_code == 404


async def test_customer_message_resumes_a_complaint_waiting_on_the_customer(env):
    await setup_basic(env)
    body = (await env.client.post("/complaints", json=complaint_body(tracking_numbers=["YT-5"], order_ids=[]))).json()
    me = agent_headers(body["agent_id"], "transport")
    await env.client.post(f"/complaints/{body['id']}/status", json={"status": "waiting_on_customer", "reason": "photos?"}, headers=me)
    customer = {"X-Actor-Id": "cust-1", "X-Actor-Role": "customer"}
    stranger = {"X-Actor-Id": "cust-9", "X-Actor-Role": "customer"}
    assert (await env.client.post(f"/complaints/{body['id']}/customer-messages", json={"body": "x"}, headers=stranger)).status_code == 404
    sent = await env.client.post(f"/complaints/{body['id']}/customer-messages", json={"body": "photos attached"}, headers=customer)
    assert sent.status_code == 200
    assert sent.json()["status"] == "in_progress" and sent.json()["status_text"] == "您的投诉正在处理中"
    full = (await env.client.get(f"/complaints/{body['id']}", headers=me)).json()
    assert all(c["deadline_at"] and not c["paused"] for c in full["clocks"])
    # same customer, category and tracking number (no order id): linked as a likely duplicate
    again = (await env.client.post("/complaints", json=complaint_body(tracking_numbers=["YT-5"], order_ids=[]))).json()
    assert again["duplicate_of"] == body["id"]


async def test_account_manager_notes_but_does_not_handle_and_gateway_customer_header(env):
    await setup_basic(env)
    body = (await env.client.post("/complaints", json=complaint_body())).json()
    am = {"X-Actor-Id": "am-zhang", "X-Actor-Role": "account_manager"}
    assert (await env.client.post(f"/complaints/{body['id']}/notes", json={"body": "key account, be quick"}, headers=am)).status_code == 200
    assert (await env.client.post(f"/complaints/{body['id']}/replies", json={"body": "hi"}, headers=am)).status_code == 403
    assert (await env.client.get("/complaints", headers=am)).status_code == 200
    portal = {"X-Actor-Id": "cust-1", "X-Actor-Subject": "portal-user", "X-Actor-Role": "customer", "X-Customer-Id": "cust-1"}
    mine = await env.client.get(f"/complaints/{body['id']}", headers=portal)
    assert mine.status_code == 200 and "team_id" not in mine.json()
    spoof = {**portal, "X-Customer-Id": "cust-2"}
    assert (await env.client.get(f"/complaints/{body['id']}", headers=spoof)).status_code == 404


async def test_nul_characters_are_bad_input_not_server_errors(env):
    """PostgreSQL cannot store NUL in text: 422 for bodies and queries, 404 for ids (found with a schemathesis run)."""
    await setup_basic(env)
    body = await env.client.post("/complaints", json=complaint_body(description="bad\x00text"))
    assert body.status_code == 422 and body.json()["errors"][0]["loc"] == ["body", "description"]
    nested = await env.client.post("/complaints", json=complaint_body(reporter={"name": "a\x00"}))
    assert nested.status_code == 422
    assert (await env.client.get("/complaints/lookup", params={"phone": "1\x00"}, headers=STAFF)).status_code == 422
    assert (await env.client.get("/complaints/%00", headers=STAFF)).status_code == 404
    assert (await env.client.post("/complaints/%00/notes", json={"body": "x"}, headers=STAFF)).status_code == 404
    assert await count(env, Complaint) == 0


async def test_lookup_and_list_pages_match_the_single_complaint_endpoints(env):
    """The page endpoints load references, clocks and timeline for all rows at once (one statement in lookup):
    each row must be exactly what GET /complaints/{id} and /complaints/{id}/timeline give, in both views."""
    await setup_basic(env)
    ids = []
    for i, category in enumerate(("delay", "damage", "loss")):
        filed = (
            await env.client.post(
                "/complaints",
                json=complaint_body(
                    category=category, tracking_numbers=[f"SF9{i}1", f"SF9{i}2"], order_ids=[f"O-{i}a", f"O-{i}b", f"O-{i}c"]
                ),
            )
        ).json()
        ids.append(filed["id"])
        assert filed["agent_id"], filed
        me = agent_headers(filed["agent_id"], filed["team_id"])
        await env.client.post(f"/complaints/{filed['id']}/notes", json={"body": f"INTERNAL {i}"}, headers=me)
        await env.client.post(f"/complaints/{filed['id']}/replies", json={"body": f"reply {i}"}, headers=me)
    as_customer = {"X-Actor-Id": "cust-1", "X-Actor-Role": "customer"}
    for headers, params in ((STAFF, {}), (as_customer, {"view": "customer"})):
        page = (await env.client.get("/complaints/lookup", params={"customer_id": "cust-1"}, headers=headers)).json()
        assert sorted(r["complaint"]["id"] for r in page) == sorted(ids)
        for row in page:
            cid = row["complaint"]["id"]
            single = (await env.client.get(f"/complaints/{cid}", params=params, headers=headers)).json()
            timeline = (await env.client.get(f"/complaints/{cid}/timeline", params=params, headers=headers)).json()
            assert row["complaint"] == single
            assert row["timeline"] == timeline and len(timeline) >= 2
            assert len(single["order_ids"]) == 3 and len(single["tracking_numbers"]) == 2
            if headers is STAFF:
                assert single["clocks"] and any("INTERNAL" in (e["body"] or "") for e in timeline)
    listed = (await env.client.get("/complaints", headers=STAFF)).json()
    assert sorted(c["id"] for c in listed) == sorted(ids)
    for row in listed:
        assert row == (await env.client.get(f"/complaints/{row['id']}", headers=STAFF)).json()


async def test_a_phone_without_digits_matches_no_contact(env):
    """It keys to no number at all: the customer search must not become 'phone IS NULL' (every contact known by email only)."""
    await seed_customer(env.db, "email-only", email="only@example.com")
    filed = await env.client.post("/complaints", json=complaint_body(customer_id=None, phone="call me", reporter=None))
    assert filed.status_code == 422 and filed.json()["title"] == "Unknown customer"
    assert filed.json()["tried"] == [{"by": "phone", "value": None}]
