"""The assignment keeps the rule that chose the team (a copy: the rule table is replaced as a whole), shown in the
staff timeline; the customer's view does not show it."""

from complaints_support import ALL_WEEK, STAFF, complaint_body, seed_customer, seed_team, shanghai

MONDAY_10 = shanghai(2026, 9, 21, 10, 0)
CUSTOMER = {"X-Actor-Id": "c-1", "X-Actor-Role": "customer", "X-Customer-Id": "cust-1"}


async def assignment_of(env, body: dict) -> dict:
    filed = await env.client.post("/complaints", json=complaint_body(**body), headers=STAFF)
    assert filed.status_code == 201, filed.text
    timeline = (await env.client.get(f"/complaints/{filed.json()['id']}/timeline", headers=STAFF)).json()
    [entry] = [e for e in timeline if e["kind"] == "assigned"]
    customer_view = (await env.client.get(f"/complaints/{filed.json()['id']}/timeline?view=customer", headers=CUSTOMER)).json()
    assert not any("rule" in str(e) for e in customer_view)
    return entry["data"]


async def test_the_assignment_names_the_stored_rule_that_chose_the_team(env):
    await seed_customer(env.db, "cust-1", region="East")
    await seed_team(env.db, "claims", {"zhao-lei": ALL_WEEK}, calendar={"timezone": "Asia/Shanghai"})
    await seed_team(env.db, "transport", {"li-na": ALL_WEEK}, strategy="round_robin")
    rules = [
        {"team": "transport", "category": "delay", "position": 10, "name": "运输延误"},
        {"team": "claims", "category": "delay", "region": "East", "position": 20, "name": "East delays to claims"},
    ]
    put = await env.client.put("/routing-rules", json=rules, headers=STAFF)
    assert put.status_code == 200, put.text
    assert [r["name"] for r in put.json()] == ["运输延误", "East delays to claims"]

    data = await assignment_of(env, {"category": "delay"})  # East from the directory: the more specific rule wins
    assert data["rule"] == {
        "source": "stored",
        "name": "East delays to claims",
        "category": "delay",
        "region": "East",
        "service_type": None,
        "team": "claims",
        "position": 20,
    }
    assert (data["team"], data["agent"], data["strategy"]) == ("claims", "zhao-lei", "least_load")

    data = await assignment_of(env, {"category": "delay", "region": "West", "order_ids": ["ORD-2"]})
    assert (data["rule"]["name"], data["agent"], data["strategy"]) == ("运输延误", "li-na", "round_robin")

    data = await assignment_of(env, {"category": "billing", "order_ids": ["ORD-3"]})  # no rule matches
    assert data["rule"] == {"source": "fallback", "team": "customer_service"}


async def test_with_no_rules_stored_the_built_in_rule_is_named_as_such(env):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "claims", {"zhao-lei": ALL_WEEK})
    data = await assignment_of(env, {"category": "damage"})
    assert data["rule"] == {
        "source": "built_in",
        "name": None,
        "category": "damage",
        "region": None,
        "service_type": None,
        "team": "claims",
        "position": 10,
    }


async def test_a_rule_name_is_bounded(env):
    await seed_team(env.db, "claims")
    too_long = await env.client.put("/routing-rules", json=[{"team": "claims", "name": "x" * 101}], headers=STAFF)
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["loc"][-1] == "name"
