"""The use cases raise domain exceptions; crm_complaints.problems alone turns them into problem details, with the
same status, type, title and members the API has always answered."""

import inspect

from complaints_support import ALL_WEEK, STAFF, agent_headers, complaint_body, seed_customer, seed_team
from crm_complaints.complaints import errors
from crm_complaints.problems import PROBLEM_STATUS, problem_of


def test_every_domain_exception_has_a_status_from_its_family():
    for exception in (e for _, e in inspect.getmembers(errors, inspect.isclass) if issubclass(e, errors.ComplaintsError)):
        if exception is not errors.ComplaintsError:
            assert any(family in PROBLEM_STATUS and family is not errors.ComplaintsError for family in exception.__mro__), exception


def test_the_mapping_keeps_title_detail_and_members():
    problem = problem_of(
        errors.TransitionNotAllowed(
            "A complaint in status 'new' cannot move to 'resolved'.", current_status="new", allowed=["assigned", "closed"]
        )
    )
    assert problem.body("/x") == {
        "type": "urn:crm:problem:invalid-transition",
        "title": "Invalid transition",
        "status": 409,
        "detail": "A complaint in status 'new' cannot move to 'resolved'.",
        "instance": "/x",
        "current_status": "new",
        "allowed": ["assigned", "closed"],
    }
    assert problem_of(errors.NotYourTeam("x", complaint_team="claims", actor_team="transport")).status == 403
    assert problem_of(errors.ComplaintNotFound("c-1")).body()["detail"] == "No complaint with id c-1."
    assert "detail" not in problem_of(errors.InvalidComplaintInput(title="Cannot merge into itself", errors=[])).body()


async def test_refusals_over_http_are_problem_json(env):
    await seed_customer(env.db, "cust-1", region="East")
    await seed_team(env.db, "transport", {"agent-t1": ALL_WEEK})
    filed = (await env.client.post("/complaints", json=complaint_body(), headers=STAFF)).json()
    path = f"/complaints/{filed['id']}"

    missing = await env.client.post("/complaints/no-such-id/resolve", json={"outcome": "x"}, headers=STAFF)
    assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")
    assert missing.json() == {
        "type": "urn:crm:problem:complaint-not-found",
        "title": "Complaint not found",
        "status": 404,
        "detail": "No complaint with id no-such-id.",
        "instance": "/complaints/no-such-id/resolve",
    }

    closing = await env.client.post(f"{path}/close", json={}, headers=STAFF)
    assert closing.status_code == 409 and closing.headers["content-type"] == "application/problem+json"
    assert {k: closing.json()[k] for k in ("type", "title", "current_status", "allowed")} == {
        "type": "urn:crm:problem:invalid-transition",
        "title": "Invalid transition",
        "current_status": filed["status"],
        "allowed": ["resolved"],
    }

    resolved = await env.client.post(f"{path}/resolve", json={"outcome": "refund"}, headers=STAFF)
    assert resolved.status_code == 200, resolved.text
    back = await env.client.post(f"{path}/status", json={"status": "waiting_on_customer"}, headers=STAFF)
    assert back.status_code == 409 and back.json()["allowed"] == ["closed", "in_progress"]

    nobody = await env.client.post(f"{path}/notes", json={"body": "x"})
    assert nobody.status_code == 401 and nobody.json()["title"] == "Actor required"
    other_team = await env.client.post(f"{path}/replies", json={"body": "x"}, headers=agent_headers("agent-c1", "claims"))
    assert other_team.status_code == 403 and other_team.json()["complaint_team"] == "transport"
    customer = await env.client.get("/complaints", headers={"X-Actor-Id": "cust-1", "X-Actor-Role": "customer"})
    assert customer.status_code == 403 and customer.json()["detail"] == "Listing complaints is for staff."
    unknown = await env.client.post(f"{path}/status", json={"status": "exploded"}, headers=STAFF)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"] == ["body", "status"]
