"""An agent's capacity, skills and languages: who may take a complaint among those on shift."""

from complaints_support import STAFF, complaint_body, seed_customer, seed_team, shanghai
from crm_complaints.complaints.routing import AgentLoad, eligible, pick_agent

MONDAY_10 = shanghai(2026, 9, 21, 10, 0)


def test_capacity_excludes_a_full_agent_and_skill_then_language_narrow_without_emptying():
    full = AgentLoad("full", 3, capacity=3, skills=frozenset({"damage"}), languages=frozenset({"en"}))
    claims_zh = AgentLoad("claims-zh", 5, skills=frozenset({"damage"}), languages=frozenset({"zh-CN"}))
    claims_en = AgentLoad("claims-en", 6, skills=frozenset({"damage"}), languages=frozenset({"en"}))
    general = AgentLoad("general", 0, languages=frozenset({"en"}))
    team = [full, claims_zh, claims_en, general]
    assert [c.agent_id for c in eligible(team, "damage", "en")] == ["claims-en"]  # skilled first, then the language
    assert [c.agent_id for c in eligible(team, "damage", "fr")] == ["claims-zh", "claims-en"]  # nobody speaks it: still taken
    assert [c.agent_id for c in eligible(team, "delay", "en")] == ["claims-en", "general"]  # nobody has the skill
    assert pick_agent(eligible(team, "delay", "en")) == "general"  # then least load as before
    assert eligible([full], "damage", "en") == []  # everyone full: the complaint waits in the team queue


async def put_agent(env, agent_id: str, **body) -> dict:
    answer = await env.client.put(
        f"/agents/{agent_id}",
        json={"team_id": "claims", "shifts": [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)], **body},
        headers=STAFF,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def file(env, **body) -> dict:
    answer = await env.client.post("/complaints", json=complaint_body(category="damage", **body), headers=STAFF)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_the_setup_keeps_them_and_filing_follows_them(env):
    await seed_customer(env.db, "cust-1")
    await seed_team(env.db, "claims", calendar={"timezone": "Asia/Shanghai"})
    stored = await put_agent(env, "zhao-lei", capacity=1, skills=["damage", "loss", "damage"], languages=["zh-CN", "en"])
    assert (stored["capacity"], stored["skills"], stored["languages"]) == (1, ["damage", "loss"], ["zh-CN", "en"])
    await put_agent(env, "anna", languages=["en"])
    read = (await env.client.get("/agents/anna", headers=STAFF)).json()
    assert (read["capacity"], read["skills"], read["languages"]) == (None, [], ["en"])

    first = await file(env, order_ids=["O1"], language="zh-CN")
    assert first["agent_id"] == "zhao-lei"  # the damage skill, though both are free
    second = await file(env, order_ids=["O2"], language="zh-CN")
    assert second["agent_id"] == "anna"  # zhao-lei is at capacity 1
    await put_agent(env, "anna", capacity=1, languages=["en"])
    third = await file(env, order_ids=["O3"])
    assert (third["agent_id"], third["status"]) == (None, "new")  # everyone full: queued for the team


async def test_bad_values_are_422_naming_the_field(env):
    await seed_team(env.db, "claims")
    for body, field in (({"capacity": 0}, "capacity"), ({"skills": ["flying"]}, "skills"), ({"languages": ["中文"]}, "languages")):
        answer = await env.client.put("/agents/x", json={"team_id": "claims", **body}, headers=STAFF)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.json()["errors"][0]["loc"], answer.json()
    assert "flying" in (await env.client.put("/agents/x", json={"team_id": "claims", "skills": ["flying"]}, headers=STAFF)).text
