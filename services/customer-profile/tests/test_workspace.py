"""The account manager's workspace on the profile service (both databases): the portfolio with scoring's view
(fed by crm.scoring events), the worklist (follow-ups, paced visit quotas, credit reviews) and the quotas as data."""

import datetime as dt
import uuid

from crm_common.events.scoring import CreditGradeChanged, CustomerScoredV2
from crm_profile.accounts.api import today
from crm_profile.accounts.handlers import HANDLERS
from profile_support import full_body

TODAY = dt.date(2026, 11, 25)  # Q4: 2026-10-01 to 2027-01-01 (92 days); the worklist looks to 2026-12-02
AT = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)


def as_actor(subject: str, role: str) -> dict:
    return {"X-Actor-Id": subject, "X-Actor-Role": role}


async def _customer(profile, manager: str, **fields) -> str:
    response = await profile.client.post("/customers", json=full_body(account_manager=manager, **fields))
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _announce(profile, payload) -> None:
    async with profile.runtime.transaction() as session:
        await HANDLERS[payload.event_type](session, payload)


def _scored(customer_id: str, abc_class: str, tier: str, **extra) -> CustomerScoredV2:
    return CustomerScoredV2(
        customer_id=customer_id,
        abc_class=abc_class,
        tier=tier,
        credit_grade="B",
        churn_risk="low",
        scores={"current_value": 80.0, "potential_value": 40.0, "p_alive": 95.0},
        scored_at=AT,
        **extra,
    )


async def _log(profile, customer_id: str, kind: str, occurred: str, **fields) -> dict:
    body = {
        "kind": kind,
        "channel": "in_person" if kind == "visit" else "phone",
        "author": "am",
        "occurred_at": occurred,
        "summary": "talked",
        **fields,
    }
    response = await profile.client.post(f"/customers/{customer_id}/interactions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_portfolio_shows_scores_key_account_reasons_and_visits(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: TODAY
    manager = f"am-{uuid.uuid4().hex[:8]}"
    top = await _customer(profile, manager, relationship_level="trust")
    flagged = await _customer(profile, manager, size_band="key_account")
    other = await _customer(profile, f"am-other-{uuid.uuid4().hex[:6]}")
    await _announce(profile, _scored(top, "A", "key_account"))
    await _announce(profile, _scored(flagged, "C", "key_account"))
    await _log(profile, top, "visit", "2026-10-15T03:00:00+00:00", outcome="agreed", next_step="send the cold-chain offer")
    await _log(profile, top, "visit", "2026-09-30T03:00:00+00:00")  # last quarter: does not count

    response = await profile.client.get("/account-manager/portfolio", headers=as_actor(manager, "account_manager"))
    assert response.status_code == 200, response.text
    items = {i["customer_id"]: i for i in response.json()["items"]}
    assert set(items) == {top, flagged}  # never another manager's customer
    assert items[top]["key_account_reasons"] == ["class A"] and items[flagged]["key_account_reasons"] == ["flagged by hand"]
    assert (items[top]["abc_class"], items[top]["tier"], items[top]["churn_risk"], items[top]["current_value"]) == (
        "A",
        "key_account",
        "low",
        80.0,
    )
    assert (items[top]["visits_done"], items[top]["visits_required"], items[top]["visit_period"]) == (1, 3, "quarter")
    assert items[top]["relationship_level"] == "trust" and items[top]["last_contact_at"].startswith("2026-10-15")

    forbidden = await profile.client.get(
        "/account-manager/portfolio", params={"account_manager": "someone-else"}, headers=as_actor(manager, "account_manager")
    )
    assert forbidden.status_code == 403 and forbidden.headers["content-type"].startswith("application/problem+json")
    staff = await profile.client.get(
        "/account-manager/portfolio", params={"account_manager": manager, "limit": 1}, headers=as_actor("boss", "admin")
    )
    assert len(staff.json()["items"]) == 1 and staff.json()["next_cursor"]
    rest = await profile.client.get(
        "/account-manager/portfolio",
        params={"account_manager": manager, "cursor": staff.json()["next_cursor"]},
        headers=as_actor("boss", "admin"),
    )
    assert [i["customer_id"] for i in staff.json()["items"] + rest.json()["items"]] == sorted([top, flagged])
    everyone = await profile.client.get("/account-manager/portfolio", params={"limit": 500}, headers=as_actor("boss", "admin"))
    assert {top, flagged, other} <= {i["customer_id"] for i in everyone.json()["items"]}
    assert (await profile.client.get("/account-manager/portfolio")).status_code == 401
    assert (await profile.client.get("/account-manager/portfolio", headers=as_actor("c1", "customer"))).status_code == 403
    assert (
        await profile.client.get("/account-manager/portfolio", params={"limit": 0}, headers=as_actor(manager, "account_manager"))
    ).status_code == 422


async def test_worklist_follow_ups_paced_visits_and_credit_reviews(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: TODAY
    manager = f"am-{uuid.uuid4().hex[:8]}"
    top, payer, quiet = [await _customer(profile, manager) for _ in range(3)]
    await _announce(profile, _scored(top, "A", "key_account"))
    await _log(profile, top, "visit", "2026-10-10T03:00:00+00:00")  # 1 of 3: the 2nd visit was due by 2026-11-30
    await _log(
        profile,
        payer,
        "call",
        "2026-11-01T03:00:00+00:00",
        outcome="needs_follow_up",
        next_step="call back about the invoice",
        next_follow_up="2026-11-18",
    )
    await _log(profile, quiet, "call", "2026-11-01T03:00:00+00:00", next_follow_up="2026-11-10")
    await _log(profile, quiet, "call", "2026-11-12T03:00:00+00:00", outcome="reached")  # the follow-up happened: nothing due
    fell = CreditGradeChanged(
        customer_id=payer,
        old_grade="B",
        new_grade="D",
        falling=True,
        actions=["credit_review_task", "alert_finance"],
        review_every_days=30,
        reason="D (serious default)",
        changed_at=AT - dt.timedelta(days=3),
    )
    await _announce(profile, fell)

    response = await profile.client.get("/account-manager/worklist", headers=as_actor(manager, "account_manager"))
    assert response.status_code == 200, response.text
    items = [(i["kind"], i["customer_id"], i["due"], i["overdue"]) for i in response.json()["items"]]
    assert items == [
        ("satisfaction_survey", top, "2026-10-31", True),  # the class A customer's survey of the quarter, due in its first month
        ("credit_review", payer, "2026-11-17", True),
        ("follow_up", payer, "2026-11-18", True),
        ("visit", top, "2026-11-30", False),
    ]
    follow_up = response.json()["items"][2]
    assert follow_up["detail"] == "call back about the invoice" and follow_up["interaction_id"]
    # the review is done: the next one is due 30 days later (outside the week ahead); the follow-up is answered
    await _log(profile, payer, "credit_review", "2026-11-19T03:00:00+00:00", outcome="agreed", next_step="weekly payment plan")
    after = await profile.client.get("/account-manager/worklist", headers=as_actor(manager, "account_manager"))
    assert [(i["kind"], i["customer_id"]) for i in after.json()["items"]] == [("satisfaction_survey", top), ("visit", top)]


async def test_worklist_items_carry_their_detail_as_a_message_key_with_parameters(profile):
    """Each generated detail has a stable key and parameters (the console writes it in zh-CN or en); `detail` keeps the
    English it had; the manager's own next step travels as written (issue 19 point 6)."""
    profile.client._transport.app.dependency_overrides[today] = lambda: TODAY
    manager = f"am-{uuid.uuid4().hex[:8]}"
    top, payer, quiet = [await _customer(profile, manager) for _ in range(3)]
    await _announce(profile, _scored(top, "A", "key_account"))
    await _log(profile, top, "visit", "2026-10-10T03:00:00+00:00")
    await _log(profile, payer, "call", "2026-11-01T03:00:00+00:00", next_step="call back about the invoice", next_follow_up="2026-11-18")
    await _log(profile, quiet, "call", "2026-11-02T03:00:00+00:00", next_follow_up="2026-11-19")
    fell = CreditGradeChanged(
        customer_id=payer,
        old_grade="B",
        new_grade="D",
        falling=True,
        actions=["credit_review_task"],
        review_every_days=30,
        reason="D (serious default)",
        changed_at=AT - dt.timedelta(days=3),
    )
    await _announce(profile, fell)

    response = await profile.client.get("/account-manager/worklist", headers=as_actor(manager, "account_manager"))
    assert response.status_code == 200, response.text
    got = {(i["kind"], i["customer_id"]): (i["detail_key"], i["detail_params"], i["detail"]) for i in response.json()["items"]}
    assert got == {
        ("satisfaction_survey", top): (
            "work.satisfaction_survey",
            {"quarter": "2026-Q4"},
            "Satisfaction survey 2026-Q4: overall score, factors and comment",
        ),
        ("credit_review", payer): ("work.credit_review_now", {"grade": "D"}, "Credit review (grade D: review now)"),
        ("follow_up", payer): ("work.follow_up_next_step", {"text": "call back about the invoice"}, "call back about the invoice"),
        ("follow_up", quiet): (
            "work.follow_up",
            {"interaction_kind": "call", "date": "2026-11-02"},
            "Follow up on the call of 2026-11-02",
        ),
        ("visit", top): ("work.visit", {"done": 1, "required": 3, "period": "quarter"}, "1 of 3 visits this quarter"),
    }


async def test_visit_quotas_are_data_admin_only_and_checked(profile):
    admin, manager = as_actor("boss", "admin"), as_actor("am-x", "account_manager")
    before = (await profile.client.get("/account-manager/visit-quotas", headers=manager)).json()
    assert {"applies_to": "abc_class", "value": "A", "visits": 3, "period": "quarter"} in before  # the seeds' example
    bad = await profile.client.put(
        "/account-manager/visit-quotas", headers=admin, json=[{"applies_to": "abc_class", "value": "Z", "visits": 3, "period": "quarter"}]
    )
    assert bad.status_code == 422
    twice = await profile.client.put(
        "/account-manager/visit-quotas",
        headers=admin,
        json=[
            {"applies_to": "tier", "value": "key_account", "visits": 3, "period": "quarter"},
            {"applies_to": "tier", "value": "key_account", "visits": 1, "period": "month"},
        ],
    )
    assert twice.status_code == 422 and twice.json()["errors"][0]["loc"] == ["body", "1", "value"]
    assert (await profile.client.put("/account-manager/visit-quotas", headers=manager, json=[])).status_code == 403
    assert (await profile.client.get("/account-manager/visit-quotas", headers=manager)).json() == before  # nothing changed
    new = before + [{"applies_to": "abc_class", "value": "B", "visits": 1, "period": "quarter"}]
    saved = await profile.client.put("/account-manager/visit-quotas", headers=admin, json=new)
    assert saved.status_code == 200 and len(saved.json()) == len(new)
    await profile.client.put("/account-manager/visit-quotas", headers=admin, json=before)  # leave the shared database as it was
