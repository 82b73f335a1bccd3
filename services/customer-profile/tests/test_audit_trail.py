"""The audit trail of personal data (crm_common.audit) in the profile service: reads and changes with actor, role,
customer, field names and request id; changes in their own transaction; erasure pseudonymises; the table is
append-only for the application; `crm-audit verify` finds an edited or deleted row. Both databases."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from crm_common import audit
from crm_common.db import Database
from profile_support import full_body, migrated_database, token

AGENT = {"X-Actor-Id": "agent-li", "X-Actor-Subject": "agent-li", "X-Actor-Role": "agent", "X-Correlation-Id": "req-audit-1"}
ADMIN = {"X-Actor-Id": "admin-1", "X-Actor-Subject": "admin-1", "X-Actor-Role": "admin"}


async def trail_of(profile, customer_id: str) -> list[dict]:
    """The customer's rows in time order (the chain's order is that of writing: queued reads come later)."""
    await profile.runtime.audit.flush()
    answer = await profile.client.get("/audit", params={"customer_id": customer_id}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return sorted(answer.json()["items"], key=lambda row: row["at"])


async def test_reads_and_changes_name_actor_role_customer_fields_and_request(profile):
    body = full_body()
    customer = (await profile.client.post("/customers", json=body, headers=AGENT)).json()
    contact = customer["contacts"][0]
    assert (await profile.client.get(f"/customers/{customer['id']}", headers=AGENT)).status_code == 200
    assert (await profile.client.get(f"/customers/{customer['id']}/contacts", headers=AGENT)).status_code == 200
    assert (await profile.client.get(f"/contacts/{contact['id']}/export", headers=AGENT)).status_code == 200
    patched = await profile.client.patch(
        f"/customers/{customer['id']}", json={"region": "North China"}, headers=AGENT | {"If-Match": f'"{customer["version"]}"'}
    )
    assert patched.status_code == 200, patched.text

    rows = await trail_of(profile, customer["id"])
    assert [(r["action"], r["resource"]) for r in rows] == [
        ("create", "customer"),
        ("read", "customer"),
        ("read", "contacts"),
        ("export", "contact-export"),
        ("update", "customer"),
    ]
    assert {(r["actor"], r["role"]) for r in rows} == {("agent-li", "agent")}
    assert all(r["request_id"] == "req-audit-1" for r in rows)
    assert rows[-1]["fields"] == ["region"] and "contacts" in rows[0]["fields"] and "phone" in rows[2]["fields"]
    assert rows[3]["contact_id"] == contact["id"]
    as_text = json.dumps(rows)
    assert contact["phone"] not in as_text and body["name"] not in as_text and "North China" not in as_text  # names, not values


async def test_lists_and_searches_record_a_read_of_every_customer_on_the_page(profile):
    """The auditor's question "who saw this customer's contacts" finds the list and the search that showed them."""
    tag = f"audit-{token()}"
    first, second = [(await profile.client.post("/customers", json=full_body(tags=[tag]), headers=AGENT)).json() for _ in range(2)]
    listed = await profile.client.get("/customers", params={"tag": tag}, headers=AGENT | {"X-Correlation-Id": "req-list"})
    assert {c["id"] for c in listed.json()["items"]} == {first["id"], second["id"]}
    phone = first["contacts"][0]["phone"]
    found = await profile.client.get("/customers/search", params={"phone": phone}, headers=AGENT | {"X-Correlation-Id": "req-search"})
    assert [c["id"] for c in found.json()["items"]] == [first["id"]]
    empty = await profile.client.get("/customers/search", params={"q": f"nobody {token()}"}, headers=AGENT)
    assert empty.status_code == 200 and empty.json()["items"] == []

    first_reads = [r for r in await trail_of(profile, first["id"]) if r["action"] == "read"]
    assert [(r["resource"], r["request_id"], r["actor"]) for r in first_reads] == [
        ("customer-list", "req-list", "agent-li"),
        ("customer-search", "req-search", "agent-li"),
    ]
    assert "contacts" in first_reads[0]["fields"] and "name" in first_reads[0]["fields"]
    assert phone not in json.dumps(first_reads)  # field names, never the searched value
    second_reads = [r for r in await trail_of(profile, second["id"]) if r["action"] == "read"]
    assert [(r["resource"], r["request_id"]) for r in second_reads] == [("customer-list", "req-list")]


async def test_a_page_is_queued_and_written_in_one_flush(profile):
    tag = f"audit-{token()}"
    created = [(await profile.client.post("/customers", json=full_body(tags=[tag]), headers=AGENT)).json() for _ in range(3)]
    await profile.runtime.audit.flush()
    assert (await profile.client.get("/customers", params={"tag": tag}, headers=AGENT)).status_code == 200
    assert profile.runtime.audit.queue.qsize() == len(created)  # answered before anything was written
    assert await profile.runtime.audit.flush() == len(created)


async def test_a_refused_change_leaves_no_audit_row(profile):
    customer = (await profile.client.post("/customers", json=full_body(), headers=AGENT)).json()
    stale = await profile.client.patch(f"/customers/{customer['id']}", json={"region": "West"}, headers=AGENT | {"If-Match": '"999"'})
    assert stale.status_code == 412
    assert [r["action"] for r in await trail_of(profile, customer["id"])] == ["create"]


async def test_only_admins_read_the_trail_and_periods_need_an_offset(profile):
    assert (await profile.client.get("/audit", headers=AGENT)).status_code == 403
    naive = await profile.client.get("/audit", params={"since": "2026-12-01T00:00:00"}, headers=ADMIN)
    assert naive.status_code == 422


async def test_an_audit_period_outside_the_window_or_an_id_beyond_the_column_is_a_422(profile):
    for params in ({"since": "0089-11-25T00:00:00Z"}, {"after_id": 49626945771618}):
        answer = await profile.client.get("/audit", params=params, headers=ADMIN)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json") and next(iter(params)) in answer.text


async def test_erasure_keeps_the_rows_with_the_person_pseudonymised(profile):
    customer = (await profile.client.post("/customers", json=full_body(), headers=AGENT)).json()
    contact = customer["contacts"][0]
    await profile.client.get(f"/customers/{customer['id']}/contacts/{contact['id']}", headers=AGENT)
    assert (await profile.client.post(f"/contacts/{contact['id']}/erase", headers=ADMIN)).status_code == 200
    rows = await trail_of(profile, customer["id"])
    about_person = [r for r in rows if r["contact_digest"] == audit.contact_digest(contact["id"])]
    assert [(r["action"], r["resource"]) for r in about_person] == [("read", "contact"), ("erase", "contact")]
    assert all(r["contact_id"] is None for r in about_person)
    async with profile.db.sessions() as session:
        assert (await audit.verify_chain(session)).ok


async def test_reads_do_not_wait_for_the_audit_write(profile):
    """The read's answer comes before its record is written: the queue holds it until the flush."""
    customer = (await profile.client.post("/customers", json=full_body(), headers=AGENT)).json()
    assert (await profile.client.get(f"/customers/{customer['id']}", headers=AGENT)).status_code == 200
    assert profile.runtime.audit.queue.qsize() >= 1
    async with profile.db.sessions() as session:
        assert [r["action"] for r in await audit.query(session, customer_id=customer["id"])] == ["create"]
    assert [r["action"] for r in await trail_of(profile, customer["id"])] == ["create", "read"]


async def test_the_application_cannot_update_or_delete_audit_rows(profile):
    customer = (await profile.client.post("/customers", json=full_body(), headers=AGENT)).json()
    for statement in ("UPDATE audit_log SET actor = 'someone-else' WHERE customer_id = :c", "DELETE FROM audit_log WHERE customer_id = :c"):
        with pytest.raises((DBAPIError, IntegrityError, OperationalError), match="append-only"):
            async with profile.db.transaction() as session:
                await session.execute(text(statement), {"c": customer["id"]})
    assert [r["actor"] for r in await trail_of(profile, customer["id"])] == ["agent-li"]


async def _tamper(db: Database, statement: str) -> None:
    """What only the table's owner can do: switch the append-only trigger off, change the table, switch it on."""
    postgres = db.engine.dialect.name == "postgresql"
    async with db.transaction() as session:
        if postgres:
            await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            await session.execute(text("DROP TRIGGER audit_log_no_update"))
            await session.execute(text("DROP TRIGGER audit_log_no_delete"))
        await session.execute(text(statement))
        if postgres:
            await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


@pytest.mark.parametrize(
    "statement, finding",
    [
        ("UPDATE audit_log SET fields = '[]' WHERE id = 2", "row 2: content does not match its hash"),
        ("UPDATE audit_log SET actor = 'nobody', row_hash = 'x' WHERE id = 2", "row 3: its prev_hash does not match"),
        ("UPDATE audit_log SET contact_id = 'another-person' WHERE id = 2", "row 2: contact_id does not match its digest"),
        ("DELETE FROM audit_log WHERE id = 2", "rows 2..2 are missing"),
    ],
)
async def test_crm_audit_verify_finds_an_edited_or_deleted_row(db_kind, database_factory, statement, finding, capsys):
    url = await migrated_database(database_factory, db_kind)
    db = Database(url)
    try:
        async with db.transaction() as session:
            await audit.append(
                session,
                [
                    audit.AuditEntry("a", "agent", "read", "contact", customer_id="C1", contact_id=f"P{i}", fields=["phone"])
                    for i in range(4)
                ],
            )
        assert await asyncio.to_thread(audit.main, ["verify", "--database-url", url]) == 0
        head = capsys.readouterr().out.split("head ")[1].strip()
        await _tamper(db, statement)
        assert await asyncio.to_thread(audit.main, ["verify", "--database-url", url, "--anchor", head]) == 1
        assert finding in capsys.readouterr().out
    finally:
        await db.dispose()


async def test_rows_deleted_from_the_end_are_found_with_an_anchor(db_kind, database_factory):
    url = await migrated_database(database_factory, db_kind)
    db = Database(url)
    try:
        async with db.transaction() as session:
            await audit.append(session, [audit.AuditEntry("a", "agent", "read", "customer", customer_id="C1") for _ in range(3)])
        async with db.sessions() as session:
            before = await audit.verify_chain(session)
        await _tamper(db, "DELETE FROM audit_log WHERE id = 3")
        async with db.sessions() as session:
            assert (await audit.verify_chain(session)).ok  # a shorter chain is still a chain
            late = await audit.verify_chain(session, anchor=(before.head_id, before.head_hash))
        assert late.problems == ["anchor row 3 is gone (rows deleted from the end)"]
    finally:
        await db.dispose()


async def test_a_flush_of_many_reads_is_three_statements_on_postgresql_four_on_sqlite(db_kind, database_factory):
    """The flush holds the API's event loop while SQLAlchemy runs its statements (issue 24, status lookup tail):
    the head is locked and read in one UPDATE ... RETURNING, and on PostgreSQL the rows go in with the new head in
    one statement whatever the batch size. The rows keep their order, the erased person's contact id stays out."""
    from sqlalchemy import event

    url = await migrated_database(database_factory, db_kind)
    db = Database(url)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    try:
        async with db.transaction() as session:
            await audit.append(session, [audit.AuditEntry("admin-1", "admin", "erase", "contact", customer_id="C1", contact_id="P1")])
        trail = audit.AuditTrail(db)
        for i in range(50):
            await trail.read(
                audit.AuditEntry("a", "agent", "read", "complaint", customer_id=f"C{i}", contact_id=f"P{i % 3}", fields=["phone", "name"])
            )
        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        assert await trail.flush() == 50
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        assert len(statements) == (3 if db_kind == "postgres" else 4), statements
        async with db.sessions() as session:
            rows = await audit.query(session, limit=100)
            assert (await audit.verify_chain(session)).ok
        assert [r["id"] for r in rows] == list(range(1, 52))
        assert [r["customer_id"] for r in rows[1:]] == [f"C{i}" for i in range(50)]
        assert {r["contact_id"] for r in rows[1:] if r["contact_digest"] == audit.contact_digest("P1")} == {None}
        assert {r["contact_id"] for r in rows[1:]} == {None, "P0", "P2"}
        assert rows[1]["fields"] == ["name", "phone"]
    finally:
        await db.dispose()
