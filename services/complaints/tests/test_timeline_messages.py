"""The service's own timeline texts arrive as a stable message key with parameters (the console renders them in zh-CN
and en) and keep their English text in `body`; someone's own words and rows stored before keys existed have no key.
The scheduler's hand-over of a queued complaint names the routing rule that queued it, as the filing's assignment does."""

import datetime as dt

import pytest

from complaints_support import ALL_WEEK, STAFF, complaint_body, seed_customer, seed_team, shanghai
from crm_complaints.complaints import messages
from crm_complaints.complaints.models import TimelineEntry
from crm_complaints.complaints.scheduler import SlaScheduler

CUSTOMER = {"X-Actor-Id": "c-1", "X-Actor-Role": "customer", "X-Customer-Id": "cust-1"}
EAST_RULE = {"team": "claims", "category": "delay", "region": "East", "position": 20, "name": "East delays to claims"}
STORED_EAST_RULE = {"source": "stored", "name": "East delays to claims", "category": "delay", "region": "East", "service_type": None}
STORED_EAST_RULE |= {"team": "claims", "position": 20}


def test_every_key_renders_its_english_text_from_its_parameters():
    rule = {"source": "stored", "name": "East delays", "category": "delay", "region": "East", "service_type": None, "team": "claims"}
    rule_built_in = {**rule, "source": "built_in", "name": None}
    cases = [
        (
            messages.assignment(team="claims", agent="zhao-lei", strategy="least_load", rule=rule, reason=None),
            "timeline.assigned",
            "Assigned to zhao-lei (team claims) by rule “East delays”, least load",
        ),
        (
            messages.assignment(
                team="claims", agent=None, strategy="round_robin", rule={"source": "fallback", "team": "claims"}, reason=None
            ),
            "timeline.queued",
            "Waiting in the queue of team claims (nobody on shift), routed by no matching rule (default team)",
        ),
        (
            messages.assignment(team="claims", agent="li-na", strategy="least_load", rule=None, reason="claimed"),
            "timeline.reassigned",
            "Reassigned to li-na (team claims): claimed",
        ),
        (
            messages.assignment(team="claims", agent="li-na", strategy="least_load", rule=None, reason=None),
            "timeline.assigned_directly",
            "Assigned to li-na (team claims)",
        ),
        (
            messages.assignment(team="claims", agent="li-na", strategy="least_load", rule=rule_built_in, reason=None, by_scheduler=True),
            "timeline.handed_over",
            "Handed to li-na (team claims) by the scheduler once on shift, routed by the built-in rule for delay, East, least load",
        ),
        (
            messages.status_changed("in_progress", "waiting_on_customer", "send photos"),
            "timeline.status_changed_reason",
            "Status in progress → waiting on customer: send photos",
        ),
        (
            messages.status_changed("waiting_on_customer", "in_progress", customer_replied=True),
            "timeline.status_changed_customer_replied",
            "Status waiting on customer → in progress: the customer replied",
        ),
        (
            messages.Message("timeline.escalated_breach", {"clock": "first_response", "to": "mgr-wang", "level": 2}),
            "timeline.escalated_breach",
            "first response breach: escalated to mgr-wang",  # the text stored before keys existed, unchanged
        ),
        (
            messages.Message("timeline.reprioritized", {"priority_from": "P3", "priority_to": "P2", "tier": "key_account", "credit": "A"}),
            "timeline.reprioritized",
            "Priority P3 -> P2 (tier key_account, credit A)",
        ),
    ]
    for message, key, english in cases:
        assert (message.key, message.english()) == (key, english)
    with pytest.raises(ValueError):
        messages.Message("timeline.no_such_text")


async def timeline(env, complaint_id: str, headers=STAFF, view: str = "agent") -> list[dict]:
    answer = await env.client.get(f"/complaints/{complaint_id}/timeline?view={view}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_timeline_entries_carry_key_params_and_english_and_old_rows_keep_their_body(env):
    await seed_customer(env.db, "cust-1", region="East")
    await seed_team(env.db, "claims", {"zhao-lei": ALL_WEEK})
    assert (await env.client.put("/routing-rules", json=[EAST_RULE], headers=STAFF)).status_code == 200
    filed = (await env.client.post("/complaints", json=complaint_body(category="delay"), headers=STAFF)).json()
    cid = filed["id"]
    agent = {"X-Actor-Id": "zhao-lei", "X-Actor-Role": "agent", "X-Actor-Team": "claims"}
    waiting = await env.client.post(
        f"/complaints/{cid}/status", json={"status": "waiting_on_customer", "reason": "请提供照片"}, headers=agent
    )
    assert waiting.status_code == 200, waiting.text
    replied = await env.client.post(f"/complaints/{cid}/customer-messages", json={"body": "照片已上传"}, headers=CUSTOMER)
    assert replied.status_code in (200, 201), replied.text

    entries = await timeline(env, cid)
    [assigned] = [e for e in entries if e["kind"] == "assigned"]
    assert assigned["message_key"] == "timeline.assigned"
    assert assigned["message_params"] == {"team": "claims", "agent": "zhao-lei", "strategy": "least_load", "rule": STORED_EAST_RULE}
    assert assigned["body"] == "Assigned to zhao-lei (team claims) by rule “East delays to claims”, least load"
    changes = [(e["message_key"], e["message_params"], e["body"]) for e in entries if e["kind"] == "status_changed"]
    assert changes == [
        (
            "timeline.status_changed_reason",
            {"status_from": "assigned", "status_to": "waiting_on_customer", "reason": "请提供照片"},
            "Status assigned → waiting on customer: 请提供照片",
        ),
        (
            "timeline.status_changed_customer_replied",
            {"status_from": "waiting_on_customer", "status_to": "in_progress"},
            "Status waiting on customer → in progress: the customer replied",
        ),
    ]
    [message] = [e for e in entries if e["kind"] == "customer_message"]
    assert (message["message_key"], message["message_params"], message["body"]) == (None, None, "照片已上传")  # their own words

    customer_view = await timeline(env, cid, CUSTOMER, "customer")
    assert [e["message_key"] for e in customer_view if e["kind"] == "status_changed"] == [key for key, _, _ in changes]
    assert not any(e["kind"] == "assigned" for e in customer_view)

    async with env.db.transaction() as session:  # a row written before keys existed
        session.add(
            TimelineEntry(
                complaint_id=cid,
                at=dt.datetime.now(dt.UTC),
                kind="escalated",
                visibility="internal",
                body="resolution breach: old text",
                data={},
            )
        )
    [old] = [e for e in await timeline(env, cid) if e["kind"] == "escalated"]
    assert (old["message_key"], old["message_params"], old["body"]) == (None, None, "resolution breach: old text")
    lookup = await env.client.get(f"/complaints/lookup?number={filed['number']}", headers=STAFF)
    assert lookup.status_code == 200, lookup.text
    [found] = lookup.json()
    assert [(e["message_key"], e["body"]) for e in found["timeline"]] == [(e["message_key"], e["body"]) for e in await timeline(env, cid)]


async def test_the_scheduler_hand_over_names_the_rule_that_queued_the_complaint(env):
    await seed_customer(env.db, "cust-1", region="East")
    await seed_team(env.db, "claims", {"day": [(d, 9 * 60, 18 * 60) for d in range(5)]})
    assert (await env.client.put("/routing-rules", json=[EAST_RULE], headers=STAFF)).status_code == 200
    night = shanghai(2026, 9, 28, 22, 0)
    async with env.runtime.transaction() as session:
        from crm_complaints.complaints import intake
        from crm_complaints.complaints.schemas import ComplaintCreate

        complaint = await intake.file_complaint(
            session, ComplaintCreate(**complaint_body(category="delay")), settings=env.settings, now=night
        )
        cid = complaint.id
    assert await SlaScheduler(env.db, env.settings).assign_queued(shanghai(2026, 9, 29, 9, 0)) == 1

    queued, handed = [e for e in await timeline(env, cid) if e["kind"] == "assigned"]
    assert queued["message_key"] == "timeline.queued" and queued["data"]["rule"] == STORED_EAST_RULE
    assert handed["message_key"] == "timeline.handed_over"
    assert handed["message_params"] == {"team": "claims", "agent": "day", "strategy": "least_load", "rule": STORED_EAST_RULE}
    assert handed["data"]["rule"] == STORED_EAST_RULE and handed["data"]["by"] == "scheduler"
    assert (
        handed["body"] == "Handed to day (team claims) by the scheduler once on shift, routed by rule “East delays to claims”, least load"
    )
