"""Admins read the audit trail through the gateway (crm_gateway.audit.api): the real profile and complaints services
record an agent's reads (the customer, its 360 view) and changes; the gateway merges them by customer, actor and
period, exports them as CSV, refuses everyone else, and refuses an incomplete export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from crm_common.db import Database
from gateway_support import role_headers
from real_stack import build_real_stack, register_in_complaints

pytest.importorskip("crm_profile", reason="customer-profile service not installed")
pytest.importorskip("crm_complaints", reason="complaints service not installed")


async def flush_trails(stack) -> None:
    for app in stack.apps.values():
        trail = getattr(app.state.runtime, "audit", None)
        if trail is not None:
            await trail.flush()


async def test_an_agents_reads_are_in_the_admins_audit_view_and_csv(database_factory):
    stack = await build_real_stack(database_factory)
    try:
        client, settings = stack.client, stack.settings
        admin, agent = role_headers(settings, "admin"), role_headers(settings, "agent")
        created = await client.post(
            "/api/v1/customers", json={"name": "Audited Freight", "contact": {"name": "Ms Li", "phone": "13800138111"}}, headers=admin
        )
        assert created.status_code == 201, created.text
        customer = created.json()["id"]
        await register_in_complaints(stack.complaints_db, customer, "13800138111")
        started = dt.datetime.now(dt.UTC)
        assert (await client.get(f"/api/v1/customers/{customer}", headers=agent)).status_code == 200
        assert (await client.get(f"/api/v1/customers/{customer}/360", headers=agent)).status_code == 200
        await flush_trails(stack)

        trail = await client.get("/api/v1/audit", params={"customer_id": customer}, headers=admin)
        assert trail.status_code == 200, trail.text
        body = trail.json()
        assert body["partial"] is False
        rows = body["items"]
        assert ("customer-profile", "admin-1", "create", "customer") in {
            (r["service"], r["actor"], r["action"], r["resource"]) for r in rows
        }
        agent_reads = [(r["service"], r["resource"]) for r in rows if r["actor"] == "agent-1"]
        assert agent_reads.count(("customer-profile", "customer")) == 2  # the profile, then the 360's profile section
        assert all(r["role"] == "agent" and r["request_id"] for r in rows if r["actor"] == "agent-1")
        assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)

        by_actor = (await client.get("/api/v1/audit", params={"actor": "agent-1", "since": started.isoformat()}, headers=admin)).json()[
            "items"
        ]
        assert by_actor and {r["actor"] for r in by_actor} == {"agent-1"} and {r["customer_id"] for r in by_actor} == {customer}
        later = (started + dt.timedelta(hours=1)).isoformat()
        assert (await client.get("/api/v1/audit", params={"customer_id": customer, "since": later}, headers=admin)).json()["items"] == []

        exported = await client.get("/api/v1/audit.csv", params={"customer_id": customer}, headers=admin)
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(table) == len(rows) and table[0]["service"] and "13800138111" not in exported.text

        assert (await client.get("/api/v1/audit", headers=agent)).status_code == 403
        assert (await client.get("/api/v1/audit.csv", headers=role_headers(settings, "account_manager"))).status_code == 403
        assert (await client.get("/api/v1/audit", params={"since": "2026-12-01T00:00:00"}, headers=admin)).status_code == 422
        ancient = await client.get("/api/v1/audit", params={"since": "0089-11-25T00:00:00Z"}, headers=admin)
        assert ancient.status_code == 422 and "since" in ancient.text, ancient.text
    finally:
        await stack.close()


async def test_an_export_is_refused_rather_than_incomplete(database_factory):
    stack = await build_real_stack(database_factory)
    try:
        complaints = stack.apps["complaints"].state.runtime
        working, complaints.db = complaints.db, Database("sqlite:////nonexistent-dir/gone.db")  # its database is unreachable
        stack.closers.append(working.dispose)
        admin = role_headers(stack.settings, "admin")
        partial = await stack.client.get("/api/v1/audit", headers=admin)
        assert partial.status_code == 200 and partial.json()["partial"] is True
        assert [w["source"] for w in partial.json()["warnings"]] == ["complaints"]
        refused = await stack.client.get("/api/v1/audit.csv", headers=admin)
        assert refused.status_code == 503 and refused.json()["sources"] == ["complaints"]
    finally:
        await stack.close()
