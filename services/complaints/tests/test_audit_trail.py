"""The audit trail in complaints (crm_common.audit): reading a complaint with its reporter details (the complaint
and the call-center lookup) and every change are recorded with actor, role, customer, reporter contact, field names
and request id; the reporter is pseudonymised when erased; the table is append-only. Both databases."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from complaints_support import ALL_WEEK, agent_headers, complaint_body, seed_customer, seed_team
from crm_common import audit
from crm_complaints.complaints.erasure import erase_person

ADMIN = {"X-Actor-Id": "admin-1", "X-Actor-Role": "admin"}


async def trail_of(env, customer_id: str) -> list[dict]:
    await env.runtime.audit.flush()
    answer = await env.client.get("/audit", params={"customer_id": customer_id}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return sorted(answer.json()["items"], key=lambda row: row["at"])


async def test_complaint_reads_and_changes_are_audited_and_the_reporter_pseudonymised_on_erasure(env):
    customer, contact = f"cust-{uuid.uuid4().hex[:8]}", f"k-{uuid.uuid4().hex[:8]}"
    await seed_customer(env.db, customer, phone="+8613800138000", contact_id=contact)
    await seed_team(env.db, "transport", {"ag-1": ALL_WEEK})
    agent = agent_headers("ag-1", "transport") | {"X-Correlation-Id": "req-c-1"}
    by_phone = {k: v for k, v in complaint_body().items() if k != "customer_id"} | {"phone": "+8613800138000"}  # found as the contact
    filed = await env.client.post("/complaints", json=by_phone, headers=agent)
    assert filed.status_code == 201, filed.text
    complaint = filed.json()
    assert (await env.client.get(f"/complaints/{complaint['id']}", headers=agent)).status_code == 200
    assert (await env.client.get("/complaints/lookup", params={"customer_id": customer}, headers=agent)).status_code == 200
    noted = await env.client.post(f"/complaints/{complaint['id']}/notes", json={"body": "called back"}, headers=agent)
    assert noted.status_code == 200, noted.text

    rows = await trail_of(env, customer)
    assert [r["action"] for r in rows] == ["create", "read", "read", "update"]
    assert {(r["actor"], r["role"], r["request_id"], r["contact_id"]) for r in rows} == {("ag-1", "agent", "req-c-1", contact)}
    assert "reporter" in rows[1]["fields"] and rows[3]["fields"] == ["body"]
    assert "Li Lei" not in json.dumps(rows) and "called back" not in json.dumps(rows)

    async with env.runtime.transaction() as session:
        await erase_person(session, customer, contact)
    rows = await trail_of(env, customer)
    assert [r["action"] for r in rows] == ["create", "read", "read", "update", "erase"]
    assert all(r["contact_id"] is None and r["contact_digest"] == audit.contact_digest(contact) for r in rows)
    async with env.db.sessions() as session:
        assert (await audit.verify_chain(session)).ok


async def test_customers_reading_their_own_complaint_are_not_audited_as_staff_reads(env):
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    await seed_customer(env.db, customer)
    await seed_team(env.db, "transport", {"ag-1": ALL_WEEK})
    filed = (
        await env.client.post("/complaints", json=complaint_body(customer_id=customer), headers=agent_headers("ag-1", "transport"))
    ).json()
    mine = {"X-Actor-Id": customer, "X-Actor-Role": "customer", "X-Customer-Id": customer}
    assert (await env.client.get(f"/complaints/{filed['id']}", headers=mine)).status_code == 200
    assert [r["action"] for r in await trail_of(env, customer)] == ["create"]


async def test_audit_rows_cannot_be_updated_or_deleted(env):
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    await seed_customer(env.db, customer)
    await seed_team(env.db, "transport", {"ag-1": ALL_WEEK})
    await env.client.post("/complaints", json=complaint_body(customer_id=customer), headers=agent_headers("ag-1", "transport"))
    for statement in ("UPDATE audit_log SET fields = '[]' WHERE customer_id = :c", "DELETE FROM audit_log WHERE customer_id = :c"):
        with pytest.raises((DBAPIError, IntegrityError, OperationalError), match="append-only"):
            async with env.db.transaction() as session:
                await session.execute(text(statement), {"c": customer})


@pytest.mark.parametrize(
    "params, field",
    [
        ({"since": "0089-11-25T00:00:00Z"}, "since"),
        ({"until": "9999-12-31T00:00:00Z"}, "until"),
        ({"after_id": 49626945771618}, "after_id"),
    ],
)
async def test_an_audit_period_outside_the_window_or_an_id_beyond_the_column_is_a_422(env, params, field):
    answer = await env.client.get("/audit", params=params, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json") and field in answer.text
