"""Shipment incidents applied a consumer batch at a time give what applying them one at a time gives, with a number
of statements that does not grow with the batch."""

import datetime as dt
import re
from decimal import Decimal

import orjson
from sqlalchemy import event, select

from complaints_support import ALL_WEEK, STAFF, complaint_body, reset_database, seed_customer, seed_team
from crm_common.consumer import Delivery, InboxProcessor
from crm_common.events import encode_envelope, make_event
from crm_common.events.logistics import ShipmentDamaged, ShipmentDelayed, ShipmentLost
from crm_common.outbox import outbox_table
from crm_complaints.complaints import directory, incidents, intake
from crm_complaints.complaints.handlers import ShipmentIncidentHandler
from crm_complaints.complaints.models import Agent, Complaint, ComplaintReference, SlaClockRow, Team, TimelineEntry
from crm_complaints.complaints.schemas import ComplaintCreate
from crm_devbroker.testing import RefusingDeadLetters

NOW = dt.datetime(2026, 9, 21, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Shanghai
DAY = 24 * 60


def _event(payload, key):
    return make_event(payload, key=key, producer="tms", correlation_id=f"corr-{payload.order_id}")


def storm() -> list:
    """Incidents whose outcomes depend on the ones before them in the batch: attaching to a complaint the batch opened,
    a duplicate by a tracking number another incident of the batch added, agents' loads and a round-robin cursor moving
    with each assignment, a merged customer, a key account, a delay under the threshold."""
    delayed = lambda order, customer, tracking=None, minutes=2 * DAY: _event(  # noqa: E731
        ShipmentDelayed(order_id=order, customer_id=customer, tracking_number=tracking, delay_minutes=minutes, reported_at=NOW), customer
    )
    lost = lambda order, customer: _event(ShipmentLost(order_id=order, customer_id=customer, reported_at=NOW), customer)  # noqa: E731
    return [
        delayed("O-1", "old-vip", "T1"),  # opens; old-vip was merged into vip (a key account)
        delayed("O-1", "vip", "T1b"),  # attaches to it, adding T1b
        _event(ShipmentDamaged(order_id="O-1", customer_id="vip", estimated_loss=Decimal("20000"), reported_at=NOW), "vip"),  # raises it
        delayed("O-3", "vip", "T1b"),  # opens, a duplicate of O-1's complaint by T1b
        delayed("O-4", "vip", minutes=30),  # under the threshold: ignored
        delayed("O-OPEN", "vip", "T-OPEN-2"),  # attaches to the complaint filed before the batch
        delayed("O-NEW", "vip", "T-DUP"),  # opens, a duplicate of the complaint filed before the batch
        *(lost(f"L-{i}", f"shipper-{i % 2}") for i in range(4)),  # claims, round robin over three agents
        *(delayed(f"D-{i}", "shipper-x") for i in range(4)),  # transport, least load over two agents
        delayed("D-0", "shipper-y"),  # the same order id for another customer: its own complaint
        delayed("O-1", "vip", "T1"),  # the same order again: attaches, T1 known already
    ]


async def seed(env) -> None:
    await seed_team(env.db, "transport", {"t1": ALL_WEEK, "t2": ALL_WEEK})
    await seed_team(env.db, "claims", {"c1": ALL_WEEK, "c2": ALL_WEEK, "c3": ALL_WEEK}, strategy="round_robin")
    await seed_customer(env.db, "vip", tier="key_account", region="East")
    await seed_customer(env.db, "old-vip")
    async with env.db.transaction() as session:
        await directory.apply_merged(session, "vip", "old-vip")
    earlier = NOW - dt.timedelta(hours=1)
    for order, tracking in (("O-OPEN", "T-OPEN"), ("O-OLD", "T-DUP")):
        async with env.db.transaction() as session:
            body = {"customer_id": "vip", "category": "delay", "description": "late", "channel": "web", "order_ids": [order]}
            await intake.file_complaint(session, ComplaintCreate(**body, tracking_numbers=[tracking]), settings=env.settings, now=earlier)


def deliveries(events) -> list[Delivery]:
    return [Delivery("logistics.orders", 0, offset, e.key.encode(), encode_envelope(e)) for offset, e in enumerate(events)]


async def snapshot(env) -> dict:
    """Every row the incidents wrote, complaint ids and numbers replaced by a stable label (the event that opened it,
    or the order of a complaint filed before the batch); row ids and write times left out."""
    async with env.db.sessions() as session:
        complaints = (await session.scalars(select(Complaint))).all()
        refs = (await session.scalars(select(ComplaintReference).order_by(ComplaintReference.id))).all()
        first_order = {}
        for ref in refs:
            if ref.kind == "order":
                first_order.setdefault(ref.complaint_id, ref.value)
        labels = {}
        for c in complaints:
            label = c.source_event_id or f"filed-before:{first_order[c.id]}"
            labels[c.id], labels[c.number] = label, f"number-of:{label}"

        def plain(value):
            if isinstance(value, str):
                for old, new in labels.items():
                    value = value.replace(old, new)
                return value
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        def row(obj, *skip):
            return plain({c.key: getattr(obj, c.key) for c in obj.__table__.columns if c.key not in ("id", "updated_at", *skip)})

        timeline = (await session.scalars(select(TimelineEntry).order_by(TimelineEntry.id))).all()
        clocks = (await session.scalars(select(SlaClockRow).order_by(SlaClockRow.id))).all()
        outbox = (
            await session.execute(select(outbox_table.c.topic, outbox_table.c.key, outbox_table.c.body).order_by(outbox_table.c.id))
        ).all()
        agents = (await session.scalars(select(Agent).order_by(Agent.id))).all()
        teams = (await session.scalars(select(Team).order_by(Team.id))).all()
    events = []
    for topic, key, body in outbox:
        envelope = orjson.loads(body)
        events.append(plain({"topic": topic, "key": key, **{k: envelope[k] for k in ("type", "payload", "correlation_id", "occurred_at")}}))
    return {
        "complaints": sorted((row(c, "number") for c in complaints), key=lambda c: c["source_event_id"] or c["description"]),
        "references": sorted((plain(r.complaint_id), r.kind, r.value) for r in refs),
        "timeline": [row(t) for t in timeline],  # in the order written
        "clocks": sorted((plain(c.complaint_id), c.kind, repr(row(c))) for c in clocks),
        "events": events,
        "agents": [(a.id, a.last_assigned_at) for a in agents],
        "teams": [(t.id, t.rr_cursor) for t in teams],
    }


async def test_a_batch_of_shipment_incidents_writes_what_one_at_a_time_writes(env, monkeypatch):
    monkeypatch.setattr(incidents, "utcnow", lambda: NOW)
    events = storm()
    processor = InboxProcessor(env.db, ShipmentIncidentHandler(env.settings), RefusingDeadLetters())

    await seed(env)
    await processor.process(deliveries(events))
    batched = await snapshot(env)

    await reset_database(env.url)
    await seed(env)
    for one in deliveries(events):
        await processor.process([one])
    one_by_one = await snapshot(env)

    assert len(batched["complaints"]) == 2 + 12  # filed before the batch; 17 events: 12 open, 4 attach, 1 ignored
    by_event = {c["source_event_id"]: c for c in batched["complaints"]}
    first = by_event[str(events[0].event_id)]
    assert (first["customer_id"], first["category"], first["priority"], first["version"]) == ("vip", "delay", "P1", 4)
    assert by_event[str(events[3].event_id)]["duplicate_of"] == str(events[0].event_id)
    assert by_event[str(events[6].event_id)]["duplicate_of"] == "filed-before:O-OLD"
    assert [by_event[str(e.event_id)]["agent_id"] for e in events[7:11]] == ["c1", "c2", "c3", "c1"]
    # least load: t1 and t2 have one complaint each before the batch, and O-1, O-3, O-NEW went to t1, t2, t1
    assert [by_event[str(e.event_id)]["agent_id"] for e in events[11:15]] == ["t2", "t1", "t2", "t1"]
    for part in batched:
        assert batched[part] == one_by_one[part], part


async def test_a_batch_takes_the_same_number_of_statements_whatever_its_size(env):
    await seed_team(env.db, "transport", {"t1": ALL_WEEK})  # one agent: the team's cursor stays t1 after the warm-up
    await seed_customer(env.db, "shipper")
    processor = InboxProcessor(env.db, ShipmentIncidentHandler(env.settings), RefusingDeadLetters())
    sqlite = env.db.dialect == "sqlite"
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        # SQLite gives no order to RETURNING rows, so SQLAlchemy inserts rows whose ids it must read back one at a time
        # there (timeline, clocks, references); those are in-process calls, and PostgreSQL batches them
        if not (sqlite and statement.startswith("INSERT INTO") and statement.endswith("RETURNING id")):
            statements.append(statement)

    def storm_of(size: int, run: str) -> list:
        return [
            _event(ShipmentDelayed(order_id=f"{run}-{i}", customer_id="shipper", delay_minutes=2 * DAY, reported_at=NOW), "shipper")
            for i in range(size)
        ]

    await processor.process(deliveries(storm_of(1, "warm")))
    counts = []
    engine = env.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for size in (5, 40):
            statements.clear()
            await processor.process(deliveries(storm_of(size, f"S{size}")))
            counts.append(len(statements))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    async with env.db.sessions() as session:
        assert len((await session.scalars(select(Complaint))).all()) == 1 + 5 + 40
    assert counts[0] == counts[1], counts


def _what(statement: str) -> str:
    """A statement as its verb and table ("SELECT teams", "INSERT INTO outbox"), FOR NO KEY UPDATE kept."""
    verb = statement.split(None, 1)[0].upper()
    table = re.search(r"(?:FROM|INTO|UPDATE)\s+\"?(\w+)", statement)
    lock = " FOR NO KEY UPDATE" if "FOR NO KEY UPDATE" in statement else ""
    return f"{verb} {table[1] if table else '?'}{lock}"


async def test_a_filing_through_the_api_sends_each_statement_once(env):
    """POST /complaints, statement by statement (BEGIN and COMMIT are the driver's, not counted here): the answer is
    built from what the filing wrote (no SELECT of its references or clocks after the INSERTs), its team is read once
    (locked), the agents with their shifts and open loads in one statement, the audit head locked and read in one."""
    await seed_team(env.db, "transport", {"t1": ALL_WEEK, "t2": ALL_WEEK})
    await seed_customer(env.db, "cust-1")
    warm = await env.client.post("/complaints", json=complaint_body(order_ids=["W-1"], tracking_numbers=["W-1"]), headers=STAFF)
    assert warm.status_code == 201, warm.text
    sqlite = env.db.dialect == "sqlite"
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        # as above: SQLite's one-row-at-a-time INSERT ... RETURNING id are in-process calls that PostgreSQL batches
        if not (sqlite and statement.startswith("INSERT INTO") and statement.endswith("RETURNING id")):
            statements.append(_what(statement))

    engine = env.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = await env.client.post("/complaints", json=complaint_body(), headers=STAFF)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 201, response.text
    assert statements == EXPECTED_FILING_STATEMENTS[env.db.dialect], statements
    shown = response.json()
    again = await env.client.get(f"/complaints/{shown['id']}", headers=STAFF)
    assert again.json() == shown  # what was answered from memory is what a read gives
    assert [c["kind"] for c in shown["clocks"]] == ["first_response", "resolution"] and shown["agent_id"] in ("t1", "t2")


# before issue 24's filing changes PostgreSQL took 21: teams read twice (then locked), the agents, their shifts and
# the loads of those on shift in three, the audit head locked then read, the answer's references and clocks read back
EXPECTED_FILING_STATEMENTS = {
    "postgresql": [
        "SELECT directory_customers",
        "SELECT routing_rules",
        "SELECT complaints",  # possible duplicates
        "SELECT teams FOR NO KEY UPDATE",
        "SELECT agents",  # with their shifts and open loads
        "INSERT outbox",  # both events
        "UPDATE agents",
        "INSERT complaints",
        "INSERT complaint_references",
        "INSERT sla_clocks",
        "UPDATE teams",
        "INSERT timeline_entries",
        "UPDATE audit_head",  # locked and read
        "WITH audit_log",  # the row and the new head in one statement (crm_common.audit)
    ],
    "sqlite": [
        "SELECT directory_customers",
        "SELECT routing_rules",
        "SELECT complaints",
        "SELECT teams",
        "SELECT agents",
        "UPDATE agents",
        "INSERT complaints",
        "UPDATE teams",
        "INSERT outbox",
        "UPDATE audit_head",
        "INSERT audit_log",
        "UPDATE audit_head",
    ],
}
