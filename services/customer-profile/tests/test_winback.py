"""Win-back on the profile service (both databases): a customer becoming lost (scoring's P(alive) and the last order
seen, or a status set by hand) opens one case with CustomerLost; the survey call goes to a neutral agent of the pool
(never the customer's manager) and is in that agent's worklist until recorded; offers are sent from the case
(WinBackOfferMade) and answered; the outcome sets the status; the report counts per month (JSON and CSV)."""

import datetime as dt
import uuid
from decimal import Decimal
from types import SimpleNamespace

import httpx

from crm_common.bus import KafkaPublisher
from crm_common.events import make_event
from crm_common.events.logistics import OrderCancelled, OrderCreated
from crm_common.events.scoring import CustomerScoredV2
from crm_devbroker.testing import edge_auth, read_events, wait_until
from crm_profile.accounts import winback
from crm_profile.accounts.api import today
from crm_profile.accounts.handlers import AccountOrdersHandler, AccountScoresHandler
from crm_profile.main import create_app
from crm_profile.settings import ProfileSettings
from profile_support import full_body, migrated_database, outbox_events

SCORED_AT = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 25)


def as_actor(subject: str, role: str) -> dict:
    return {"X-Actor-Id": subject, "X-Actor-Role": role}


ADMIN = as_actor("admin-1", "admin")


async def _call_agents(profile, *agents: str) -> httpx.Response:
    """The pool is one table of the session's shared database: each test sets its own agents first."""
    return await profile.client.put("/account-manager/win-back-call-agents", json={"agents": list(agents)}, headers=ADMIN)


async def _customer(profile, manager: str, **fields) -> dict:
    response = await profile.client.post("/customers", json=full_body(account_manager=manager, **fields))
    assert response.status_code == 201, response.text
    return response.json()


async def _deliver(profile, handler, payload) -> None:
    event = SimpleNamespace(envelope=SimpleNamespace(type=payload.event_type), payload=payload)
    async with profile.runtime.transaction() as session:
        await handler.handle(session, event)


def _order(customer_id: str, day: str, amount: str = "1000.00") -> OrderCreated:
    return OrderCreated(
        order_id=f"o-{uuid.uuid4().hex[:10]}", customer_id=customer_id, order_date=f"{day}T08:00:00+08:00", amount=Decimal(amount)
    )


def _scored(customer_id: str, p_alive: float) -> CustomerScoredV2:
    return CustomerScoredV2(
        customer_id=customer_id,
        abc_class="C",
        tier="at_risk",
        credit_grade="B",
        churn_risk="high",
        scores={"current_value": 10.0, "p_alive": p_alive},
        scored_at=SCORED_AT,
    )


async def test_an_inactive_customer_becomes_lost_once_and_a_neutral_agent_gets_the_survey_call(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: TODAY
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    assert (await _call_agents(profile, agent)).status_code == 200
    scores = AccountScoresHandler(ProfileSettings(lost_after_days=180, lost_p_alive_below=20))
    orders = AccountOrdersHandler()
    manager = f"am-{uuid.uuid4().hex[:8]}"
    gone, recent, likely = [(await _customer(profile, manager))["id"] for _ in range(3)]
    await _deliver(profile, orders, _order(gone, "2026-04-01"))
    late = _order(gone, "2026-10-01")
    await _deliver(profile, orders, late)
    await _deliver(profile, orders, OrderCancelled(order_id=late.order_id, customer_id=gone, cancelled_at="2026-10-02T08:00:00+08:00"))
    await _deliver(profile, orders, _order(recent, "2026-09-01"))  # 80 days: not lost, whatever P(alive) says
    await _deliver(profile, orders, _order(likely, "2026-01-01"))

    await _deliver(profile, scores, _scored(gone, 5.0))  # last (uncancelled) order 2026-04-01: 233 days
    await _deliver(profile, scores, _scored(recent, 5.0))
    await _deliver(profile, scores, _scored(likely, 60.0))  # old order, but likely alive
    await _deliver(profile, scores, _scored(gone, 4.0))  # already lost: no second case

    statuses = {cid: (await profile.client.get(f"/customers/{cid}")).json()["status"] for cid in (gone, recent, likely)}
    assert statuses == {gone: "lost", recent: "active", likely: "active"}
    lost = await outbox_events(profile.db, key=gone, type_="CustomerLost")
    assert len(lost) == 1 and lost[0].payload["cause"] == "inactive" and lost[0].payload["account_manager"] == manager
    assert "2026-04-01" in lost[0].payload["detail"]
    updated = await outbox_events(profile.db, key=gone, type_="CustomerUpdated")
    assert updated[-1].payload["status"] == "lost" and updated[-1].payload["changed_fields"] == ["status"]

    mine = (await profile.client.get("/account-manager/worklist", headers=as_actor(manager, "account_manager"))).json()["items"]
    assert not [i for i in mine if i["kind"] == "win_back_call"]  # not the customer's own manager: someone neutral asks
    worklist = (
        await profile.client.get("/account-manager/worklist", params={"account_manager": agent}, headers=as_actor(agent, "agent"))
    ).json()["items"]
    calls = [i for i in worklist if i["kind"] == "win_back_call" and i["customer_id"] in (gone, recent, likely)]
    assert [(c["customer_id"], c["due"], c["overdue"], c["case_id"], c["call_agent"]) for c in calls] == [
        (gone, "2026-11-20", True, lost[0].payload["case_id"], agent)
    ]
    case = (await profile.client.get(f"/account-manager/win-back-cases/{calls[0]['case_id']}", headers=ADMIN)).json()
    assert calls[0]["detail_key"] == "work.win_back_call" and calls[0]["detail_params"]["case_detail_key"] == "winback.inactive"
    assert calls[0]["detail_params"]["case_detail_params"]["last_order"] == "2026-04-01"
    assert case["call_agent"] == agent and case["call_assigned_at"] is not None
    # why the case was opened, as a message key with parameters beside the English (issue 19 point 6)
    assert (case["detail_key"], case["detail_params"], case["detail"]) == (
        "winback.inactive",
        {"last_order": "2026-04-01", "days": 233, "p_alive": "5", "p_alive_below": "20"},
        "no order since 2026-04-01 (233 days) and P(alive) 5% < 20%",
    )


async def test_survey_by_the_neutral_agent_offer_outcome_and_report(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: TODAY
    manager = f"am-{uuid.uuid4().hex[:8]}"
    me = as_actor(manager, "account_manager")
    zhou, zhao = f"agent-zhou-{uuid.uuid4().hex[:6]}", f"agent-zhao-{uuid.uuid4().hex[:6]}"
    assert (await _call_agents(profile, zhou, zhao)).json() == {"agents": [zhou, zhao]}
    first = await _customer(profile, manager)
    second = await _customer(profile, manager)
    for customer in (first, second):  # terminated by hand
        response = await profile.client.patch(f"/customers/{customer['id']}", json={"status": "lost"}, headers={"If-Match": "*"})
        assert response.status_code == 200, response.text
    cases = (await profile.client.get("/account-manager/win-back-cases", headers=me)).json()["items"]
    assert {c["customer_id"] for c in cases} == {first["id"], second["id"]} and {c["cause"] for c in cases} == {"terminated"}
    case = next(c for c in cases if c["customer_id"] == first["id"])
    other_case = next(c for c in cases if c["customer_id"] == second["id"])
    # each to the agent with the fewest calls waiting (the pool also took the calls earlier tests left without one)
    assert {case["call_agent"], other_case["call_agent"]} == {zhou, zhao}
    assigned, unassigned = case["call_agent"], other_case["call_agent"]
    caller = as_actor(assigned, "agent")

    reasons = (await profile.client.get("/account-manager/win-back-reasons", headers=me)).json()
    assert {"price", "late_delivery", "other"} <= {r["code"] for r in reasons} and all(r["label_zh"] for r in reasons)
    bad = await profile.client.post(f"/account-manager/win-back-cases/{case['id']}/survey", headers=caller, json={"reasons": ["cheaper"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "reasons"]
    assert (
        await profile.client.post(f"/account-manager/win-back-cases/{case['id']}/survey", headers=caller, json={"reasons": []})
    ).status_code == 422
    for not_neutral in (me, as_actor(unassigned, "agent")):  # the customer's own manager; an agent the call was not given to
        refused = await profile.client.post(
            f"/account-manager/win-back-cases/{case['id']}/survey", headers=not_neutral, json={"reasons": ["price"]}
        )
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json"), refused.text
    assert (
        await profile.client.post(
            f"/account-manager/win-back-cases/{case['id']}/survey", headers=as_actor("am-x", "account_manager"), json={"reasons": ["price"]}
        )
    ).status_code == 404  # another manager's case
    surveyed = await profile.client.post(
        f"/account-manager/win-back-cases/{case['id']}/survey",
        headers=caller,
        json={"reasons": ["price", "late_delivery"], "reason_text": "竞争对手便宜10%", "would_return_if": "a 5% discount"},
    )
    assert surveyed.status_code == 200, surveyed.text
    assert surveyed.json()["reasons"] == ["price", "late_delivery"] and surveyed.json()["surveyed_by"] == assigned
    calls = [
        i
        for i in (await profile.client.get("/account-manager/worklist", headers=ADMIN)).json()["items"]
        if i["kind"] == "win_back_call" and i["customer_id"] in (first["id"], second["id"])
    ]
    assert [(c["customer_id"], c["call_agent"]) for c in calls] == [(second["id"], unassigned)]  # the surveyed case's call is done

    offers = f"/account-manager/win-back-cases/{case['id']}/offers"
    offer_body = {"summary": "5% off and guaranteed capacity in November", "discount_percent": 5, "valid_until": "2026-12-31"}
    for bad_offer in ({**offer_body, "valid_until": "2026-11-24"}, {**offer_body, "discount_percent": 95}, {**offer_body, "summary": ""}):
        refused = await profile.client.post(offers, headers=me, json=bad_offer)
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json"), refused.text
    assert (await profile.client.post(offers, headers=caller, json=offer_body)).status_code == 403  # the agent only asks
    assert (await profile.client.post(offers, headers=as_actor("am-x", "account_manager"), json=offer_body)).status_code == 404
    assert await outbox_events(profile.db, key=first["id"], type_="WinBackOfferMade") == []  # refusals sent nothing
    sent = await profile.client.post(offers, headers=me, json=offer_body)
    assert sent.status_code == 201, sent.text
    offer = sent.json()
    [made] = await outbox_events(profile.db, key=first["id"], type_="WinBackOfferMade")
    assert (made.payload["offer_id"], made.payload["case_id"], made.payload["discount_percent"], made.payload["valid_until"]) == (
        offer["id"],
        case["id"],
        5,
        "2026-12-31",
    )
    assert made.payload["account_manager"] == manager and made.payload["made_by"] == manager
    answer = f"{offers}/{offer['id']}/response"
    assert (await profile.client.post(answer, headers=me, json={"response": "maybe"})).status_code == 422
    assert (await profile.client.post(f"{offers}/nope/response", headers=me, json={"response": "accepted"})).status_code == 404
    accepted = await profile.client.post(answer, headers=me, json={"response": "accepted", "note": "signed for Q1"})
    assert accepted.status_code == 200 and accepted.json()["response"] == "accepted"
    assert (await profile.client.post(answer, headers=me, json={"response": "declined"})).status_code == 409
    shown = (await profile.client.get(f"/account-manager/win-back-cases/{case['id']}", headers=me)).json()
    assert [(o["summary"], o["response"], o["response_note"]) for o in shown["offers"]] == [
        (offer_body["summary"], "accepted", "signed for Q1")
    ]

    won = await profile.client.post(
        f"/account-manager/win-back-cases/{case['id']}/outcome", headers=me, json={"outcome": "won_back", "note": "signed"}
    )
    assert won.status_code == 200 and won.json()["status"] == "won_back"
    assert (await profile.client.get(f"/customers/{first['id']}")).json()["status"] == "active"
    again = await profile.client.post(
        f"/account-manager/win-back-cases/{case['id']}/outcome", headers=me, json={"outcome": "lost_for_good"}
    )
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    assert (
        await profile.client.post(f"/account-manager/win-back-cases/{other_case['id']}/outcome", headers=me, json={"outcome": "maybe"})
    ).status_code == 422
    gone = await profile.client.post(
        f"/account-manager/win-back-cases/{other_case['id']}/outcome", headers=me, json={"outcome": "lost_for_good"}
    )
    assert gone.status_code == 200
    assert (await profile.client.get(f"/customers/{second['id']}")).json()["status"] == "lost"

    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    report = await profile.client.get("/account-manager/win-back-report", params={"since": month, "until": month}, headers=me)
    assert report.status_code == 200, report.text
    [row] = report.json()["months"]
    assert (row["opened"], row["won_back"], row["lost_for_good"], row["in_progress"], row["surveyed"], row["win_back_rate"]) == (
        2,
        1,
        1,
        0,
        1,
        0.5,
    )
    assert (row["offers_sent"], row["offers_accepted"]) == (1, 1)
    assert row["reasons"] == {"price": 1, "late_delivery": 1}
    csv = await profile.client.get("/account-manager/win-back-report.csv", params={"since": month, "until": month}, headers=me)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    header, line = csv.text.strip().splitlines()
    assert header.startswith("month,opened,won_back,lost_for_good,in_progress,surveyed,win_back_rate,reason_price,reason_late_delivery")
    assert line.startswith(f"{month},2,1,1,0,1,0.5000,1,1") and line.endswith(",1,1")
    assert (await profile.client.post(offers, headers=me, json=offer_body)).status_code == 409  # the case ended

    assert (await profile.client.get("/account-manager/win-back-report", params={"since": "2026-13"}, headers=me)).status_code == 422
    assert (
        await profile.client.get("/account-manager/win-back-report", params={"since": "2026-11", "until": "2026-10"}, headers=me)
    ).status_code == 422
    assert (
        await profile.client.get("/account-manager/win-back-report", params={"since": month, "account_manager": "am-x"}, headers=me)
    ).status_code == 403
    assert (await profile.client.get("/account-manager/win-back-cases", headers=as_actor("c1", "customer"))).status_code == 403
    assert (await profile.client.get("/account-manager/win-back-cases")).status_code == 401


async def test_the_pool_of_call_agents_is_neutral_and_takes_the_calls_nobody_had(profile):
    manager = f"am-{uuid.uuid4().hex[:8]}"
    assert (await _call_agents(profile)).status_code == 200  # nobody in the pool
    customer = await _customer(profile, manager)
    assert (
        await profile.client.patch(f"/customers/{customer['id']}", json={"status": "lost"}, headers={"If-Match": "*"})
    ).status_code == 200
    [case] = (await profile.client.get("/account-manager/win-back-cases", headers=as_actor(manager, "account_manager"))).json()["items"]
    assert case["call_agent"] is None  # waits for the pool

    bad = await _call_agents(profile, "agent-a", manager, "agent-a")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert sorted(tuple(e["loc"]) for e in bad.json()["errors"]) == [("body", "agents", "1"), ("body", "agents", "2")]
    assert (await _call_agents(profile, "x" * 101)).status_code == 422
    assert (await profile.client.get("/account-manager/win-back-call-agents", headers=ADMIN)).json() == {"agents": []}  # nothing kept
    refused = await profile.client.put(
        "/account-manager/win-back-call-agents", json={"agents": ["agent-a"]}, headers=as_actor(manager, "account_manager")
    )
    assert refused.status_code == 403

    agent = f"agent-{uuid.uuid4().hex[:8]}"
    assert (await _call_agents(profile, agent)).json() == {"agents": [agent]}
    shown = (await profile.client.get(f"/account-manager/win-back-cases/{case['id']}", headers=ADMIN)).json()
    assert shown["call_agent"] == agent
    mine = await profile.client.get("/account-manager/win-back-cases", params={"call_agent": agent}, headers=as_actor(agent, "agent"))
    assert case["id"] in [c["id"] for c in mine.json()["items"]] and {c["call_agent"] for c in mine.json()["items"]} == {agent}


async def test_setting_a_lost_customer_active_by_hand_closes_its_case_as_won_back(profile):
    manager = f"am-{uuid.uuid4().hex[:8]}"
    customer = await _customer(profile, manager)
    lost = await profile.client.patch(f"/customers/{customer['id']}", json={"status": "lost"}, headers={"If-Match": "*"})
    assert lost.status_code == 200, lost.text
    back = await profile.client.patch(f"/customers/{customer['id']}", json={"status": "active"}, headers={"If-Match": "*"})
    assert back.status_code == 200, back.text
    [case] = (await profile.client.get("/account-manager/win-back-cases", headers=as_actor(manager, "account_manager"))).json()["items"]
    assert case["status"] == "won_back" and case["outcome_note"] == "status set to active"
    assert (case["detail_key"], case["detail_params"], case["detail"]) == (
        "winback.terminated",
        {"old_status": "active"},
        "status set to lost (was active)",
    )


async def test_the_running_consumers_make_an_inactive_customer_lost_and_customer_lost_reaches_kafka(
    db_kind, database_factory, kafka_settings
):
    """Through the real broker: an old order on logistics.orders and a low P(alive) on crm.scoring, read by the profile's
    own consumers, make the customer lost; CustomerUpdated (status) then CustomerLost (the case) leave by the outbox."""
    url = await migrated_database(database_factory, db_kind)
    settings = ProfileSettings(
        database_url=url, kafka=kafka_settings, outbox_poll_interval_s=0.05, lost_after_days=30, lost_p_alive_below=20
    )
    app = create_app(settings, start_background=False)
    runtime = app.state.runtime
    await runtime.start(relay=True, consumers=True)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://profile", auth=edge_auth(app))
    publisher = KafkaPublisher(kafka_settings, client_id="winback-test")
    try:
        manager = f"am-{uuid.uuid4().hex[:8]}"
        created = await client.post("/customers", json=full_body(account_manager=manager))
        assert created.status_code == 201, created.text
        customer = created.json()["id"]
        now = dt.datetime.now(dt.UTC)
        old_order = OrderCreated(
            order_id=f"o-{uuid.uuid4().hex[:10]}", customer_id=customer, order_date=now - dt.timedelta(days=45), amount=Decimal("800")
        )
        await publisher.publish(make_event(old_order, key=customer, producer="tms"))

        async def order_seen():
            async with runtime.db.sessions() as session:
                return await winback.last_order_at(session, customer)

        await wait_until(order_seen, timeout_s=30)
        scored = CustomerScoredV2(
            customer_id=customer, abc_class="C", tier="at_risk", churn_risk="high", scores={"p_alive": 3.0}, scored_at=now
        )
        await publisher.publish(make_event(scored, key=customer, producer="scoring"))

        events = await read_events(kafka_settings, "crm.customers", count=3, timeout_s=40, predicate=lambda e: e.key == customer)
        assert [e.type for e in events] == ["CustomerRegistered", "CustomerUpdated", "CustomerLost"]
        lost = events[2].parsed()
        assert (lost.cause, lost.account_manager, events[1].parsed().status) == ("inactive", manager, "lost")
        case = (await client.get(f"/account-manager/win-back-cases/{lost.case_id}", headers=as_actor(manager, "account_manager"))).json()
        assert (case["customer_id"], case["status"]) == (customer, "in_progress")
    finally:
        await publisher.stop()
        await client.aclose()
        await runtime.stop()
