"""The hot queries use their indexes on PostgreSQL.

Each test fills the tables with a few thousand rows (so a sequential scan is no longer the planner's
cheapest choice), runs the service's own function or endpoint while recording the SQL it sends, and
EXPLAINs the recorded statement with its parameters. The planner is left alone (no enable_seqscan = off):
a failing test means the planner would really scan the table.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from crm_common.db import Database
from crm_devbroker.testing import edge_auth, migrated_database
from perf_support import assert_indexed, counting, describe, fill, plan

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
ROWS = 5000


async def _migrated(database_factory, folder: str, label: str) -> str:
    return await migrated_database(database_factory, "postgres", SERVICES / folder / "alembic.ini", label)


# ----------------------------------------------------------------------------- complaints
@pytest.fixture
async def complaints_db(database_factory):
    url = await _migrated(database_factory, "complaints", "perfc")
    await fill(
        url,
        "complaints",
        ROWS,
        id="'cmp-' || g",
        number="'C' || lpad(g::text, 9, '0')",
        status="'new'",
        priority="'P2'",
        channel="'web'",
        language="'zh-CN'",
        category="'delay'",
        customer_id="'cust-' || (g % 500)",
        reporter_phone="'+86137' || lpad(g::text, 8, '0')",
        attachments="'[]'::json",
        filed_at="now() - g * interval '1 minute'",
    )
    await fill(
        url,
        "complaint_references",
        2 * ROWS,
        complaint_id="'cmp-' || ((g - 1) / 2 + 1)",
        kind="CASE WHEN g % 2 = 0 THEN 'tracking' ELSE 'order' END",
        value="'SF' || lpad(g::text, 10, '0')",
    )
    return url


async def _complaints_lookup(url: str, **keys):
    """The lookup as the API runs it: Database.read(), asyncpg with array parameters on PostgreSQL."""
    from crm_complaints.complaints import lookup

    db = Database(url)
    try:
        with counting(db.engine) as log:
            found = await db.read(lambda reader: lookup.lookup(reader, **keys))
    finally:
        await db.dispose()
    return [row["id"] for row in found], log


async def test_complaint_lookup_by_tracking_number_uses_the_reference_index(complaints_db):
    found, log = await _complaints_lookup(complaints_db, tracking_number="SF0000000042")
    assert found == ["cmp-21"]
    statement, parameters = log.selects(touching="complaint_references")[-1]
    await assert_indexed(complaints_db, statement, parameters, "complaint_references", indexes={"ix_complaint_references_value"})
    await assert_indexed(complaints_db, statement, parameters, "complaints", indexes={"complaints_pkey"})


async def test_complaint_lookup_by_number_uses_the_unique_index(complaints_db):
    found, log = await _complaints_lookup(complaints_db, number="c000000042")
    assert found == ["cmp-42"]
    statement, parameters = log.selects(touching="FROM complaints")[-1]
    await assert_indexed(complaints_db, statement, parameters, "complaints")


async def test_complaint_lookup_by_phone_uses_an_index(complaints_db):
    found, log = await _complaints_lookup(complaints_db, phone="+86 137 0000 0042")
    assert found == ["cmp-42"]
    statement, parameters = log.selects(touching="FROM complaints")[-1]
    await assert_indexed(complaints_db, statement, parameters, "complaints")


# ----------------------------------------------------------------------------- customer profile
@pytest.fixture
async def profile_db(database_factory):
    url = await _migrated(database_factory, "customer-profile", "perfp")
    await fill(
        url,
        "customers",
        ROWS,
        id="'cus-' || g",
        name="'Shipper ' || g",
        customer_type="'company'",
        status="'active'",
        created_at="now() - g * interval '1 minute'",
        version="1",
    )
    await fill(
        url,
        "contacts",
        2 * ROWS,
        id="'con-' || g",
        customer_id="'cus-' || ((g - 1) / 2 + 1)",
        phone="'+86137' || lpad(g::text, 8, '0')",
        email="'p' || g || '@example.com'",
        created_at="now()",
        version="1",
    )
    return url


async def _profile_search(url: str, **keys):
    from crm_profile.customers import service

    db = Database(url)
    try:
        with counting(db.engine) as log:
            async with db.sessions() as session:
                found = await service.search_customers(session, **keys)
    finally:
        await db.dispose()
    return found, log


@pytest.mark.parametrize(
    "keys, column, index",
    [
        ({"phone": "+86 137 0000 0042"}, "contacts.phone", "ix_contacts_phone"),
        ({"email": "P42@Example.com"}, "contacts.email", "ix_contacts_email"),
        ({"q": "13700000042"}, "contacts.phone", "ix_contacts_phone"),
    ],
)
async def test_customer_search_by_normalised_phone_or_email_uses_the_contact_index(profile_db, keys, column, index):
    (rows, _cursor), log = await _profile_search(profile_db, **keys)
    assert [c.id for c in rows] == ["cus-21"]
    statement, parameters = log.selects(touching=column + " =")[0]
    await assert_indexed(profile_db, statement, parameters, "contacts", indexes={index})


# ----------------------------------------------------------------------------- scoring lists
@pytest.fixture
async def scoring_app(database_factory):
    from crm_scoring.main import create_app
    from crm_scoring.settings import ScoringSettings

    url = await _migrated(database_factory, "scoring", "perfs")
    await fill(
        url,
        "customer_scores",
        ROWS,
        customer_id="'cus-' || lpad(g::text, 6, '0')",
        # the shares the default ABC cut-offs give (A 1%, B 4%, C 15%, D 80%) and a few at-risk customers
        abc_class="CASE WHEN g % 100 = 0 THEN 'A' WHEN g % 100 < 5 THEN 'B' WHEN g % 100 < 20 THEN 'C' ELSE 'D' END",
        tier="CASE WHEN g % 50 = 7 THEN 'at_risk' WHEN g % 100 = 0 THEN 'key_account' WHEN g % 3 = 0 THEN 'small' ELSE 'ordinary' END",
        rfm_segment="'champions'",
        churn_risk="'low'",
        credit_grade="'B'",
    )
    app = create_app(ScoringSettings(database_url=url, run_scheduler=False), start_background=False)
    yield url, app
    await app.state.runtime.db.dispose()


@pytest.mark.parametrize("query, index", [("abc_class=A", "ix_scores_abc"), ("tier=at_risk", "ix_scores_tier")])
async def test_scoring_list_by_class_or_tier_uses_its_index(scoring_app, query, index):
    url, app = scoring_app
    with counting(app.state.runtime.db.engine) as log:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", auth=edge_auth(app)) as client:
            response = await client.get(f"/scores?{query}&limit=20")
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 20
    statement, parameters = log.selects(touching="customer_scores")[-1]
    await assert_indexed(url, statement, parameters, "customer_scores", indexes={index})


# ----------------------------------------------------------------------------- scoring management reports
@pytest.fixture
async def report_app(database_factory):
    """Scores of ROWS customers, two announced states each (one before the movements' 90 days, one in them) and 12
    months of service-level records."""
    from crm_scoring.main import create_app
    from crm_scoring.settings import ScoringSettings

    url = await _migrated(database_factory, "scoring", "perfr")
    customer = f"'cus-' || lpad((1 + (g - 1) % {ROWS})::text, 6, '0')"
    await fill(
        url,
        "customer_scores",
        ROWS,
        customer_id="'cus-' || lpad(g::text, 6, '0')",
        contribution="(g * 7919) % 10007",
        tier="'ordinary'",
        churn_risk="'low'",
    )
    await fill(
        url,
        "score_history",
        2 * ROWS,
        customer_id=customer,
        scored_at=f"now() - CASE WHEN g <= {ROWS} THEN interval '200 days' ELSE interval '10 days' END",
        scores="json_build_object('credit_grade', chr(65 + g % 4), 'churn_risk', (ARRAY['low', 'medium', 'high'])[1 + g % 3])",
        credit_grade="chr(65 + g % 4)",
        churn_risk="(ARRAY['low', 'medium', 'high'])[1 + g % 3]",
    )
    await fill(
        url,
        "service_level_months",
        12 * ROWS,
        customer_id=customer,
        month=f"'2026-' || lpad((1 + (g - 1) / {ROWS})::text, 2, '0')",
        on_time_delivery_pct="(g * 7919) % 1000 / 10.0",
    )
    app = create_app(ScoringSettings(database_url=url, run_scheduler=False), start_background=False)
    yield url, app
    await app.state.runtime.db.dispose()


async def _report(app, path: str, **params):
    with counting(app.state.runtime.db.engine) as log:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", auth=edge_auth(app)) as client:
            response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json(), log


async def test_credit_churn_movements_read_the_history_once_without_a_window(report_app):
    """The states at the period's start and end come from one aggregate over score_history (no row_number over it)."""
    url, app = report_app
    report, log = await _report(app, "/reports/credit-churn")
    assert sum(t["customers"] for t in report["movements"]["churn_risk"]["transitions"]) == ROWS
    [movements] = log.selects(touching="score_history")
    tree = await plan(url, *movements)
    assert "WindowAgg" not in describe(tree), describe(tree)


async def test_abc_report_ranks_the_customers_once(report_app):
    url, app = report_app
    report, log = await _report(app, "/reports/abc")
    assert report["customers"] == ROWS
    assert len([s for s, _ in log.selects(touching="customer_scores") if "row_number" in s]) == 1


async def test_service_level_worst_customers_are_a_top_n_of_the_month(report_app):
    """The worst customers are the LIMIT of the month's records (a top-N sort), read through the month's index; the
    other records of the month are not fetched."""
    url, app = report_app
    report, log = await _report(app, "/reports/service-levels", month="2026-06", worst=5)
    assert report["customers"] == ROWS and len(report["worst"]) == 5
    [records] = [(s, p) for s, p in log.selects(touching="service_level_months") if "ORDER BY" in s]
    tree = await assert_indexed(url, *records, "service_level_months", indexes={"ix_service_level_months_month"})
    assert tree["Node Type"] == "Limit", describe(tree)


# ----------------------------------------------------------------------------- outbox and inbox (crm_common)
async def test_outbox_pending_scan_uses_the_partial_index(database_factory):
    from crm_common.outbox import OutboxRelay

    url = await _migrated(database_factory, "scoring", "perfo")
    await fill(
        url,
        "outbox",
        20_000,
        event_id="'e-' || g",
        topic="'t'",
        key="'k'",
        event_type="'X'",
        body="'{}'",
        created_at="now()",
        published_at="CASE WHEN g > 19990 THEN NULL ELSE now() END",
    )
    db = Database(url)
    try:
        relay = OutboxRelay(db, publisher=None, service="perf")
        with counting(db.engine) as log:
            pending = await relay._fetch_pending()
    finally:
        await db.dispose()
    assert len(pending) == 10
    statement, parameters = log.selects(touching="outbox")[-1]
    await assert_indexed(url, statement, parameters, "outbox", indexes={"ix_outbox_pending"})


async def test_inbox_lookup_uses_its_primary_key(database_factory):
    from crm_common.consumer import Delivery, Event, InboxProcessor
    from crm_common.events.envelope import encode_envelope, make_event
    from crm_common.events.logistics import OrderShipped

    url = await _migrated(database_factory, "scoring", "perfi")
    await fill(
        url,
        "inbox",
        20_000,
        consumer="CASE WHEN g % 2 = 0 THEN 'scoring' ELSE 'other' END",
        event_id="md5(g::text)::uuid::text",
        event_type="'OrderShipped'",
        outcome="'applied'",
        processed_at="now()",
    )

    class Handler:
        name = "scoring"
        topics = ("logistics.orders",)
        event_types = None

    events = []
    for i in range(20):
        envelope = make_event(
            OrderShipped(order_id=f"o{i}", customer_id="c1", shipped_at="2026-01-01T00:00:00Z"),
            key="c1",
            producer="t",
            event_id=uuid.uuid4(),
        )
        events.append(Event(envelope, envelope.parsed(), Delivery("logistics.orders", 0, i, b"c1", encode_envelope(envelope))))
    db = Database(url)
    processor = InboxProcessor(db, Handler(), dead_letters=None)
    try:
        with counting(db.engine) as log:
            async with db.transaction() as session:
                fresh = await processor._claim(session, events, "applied")
        async with db.transaction() as session:
            again = await processor._claim(session, events, "applied")
    finally:
        await db.dispose()
    assert len(fresh) == 20 and again == []  # the claim itself tells duplicates apart
    assert not log.selects(touching="inbox"), "the inbox is claimed with one INSERT ... ON CONFLICT, not looked up"
    claims = [s for s, _ in log.statements if s.lstrip().upper().startswith("INSERT") and "inbox" in s]
    assert len(claims) == 1 and "ON CONFLICT" in claims[0].upper()  # the primary key is the only unique index: it decides


# ----------------------------------------------------------------------------- notifications dispatcher and digests
@pytest.fixture
async def notifications_queue(database_factory):
    """A send queue that is mostly history: 20,000 sent messages, 400 waiting, 400 open digests."""
    url = await _migrated(database_factory, "notifications", "perfn")
    await fill(
        url,
        "nf_messages",
        20_800,
        id="'msg-' || g",
        recipient_key="'k' || (g % 2000)",
        category="'shipment_status'",
        channel="'email'",
        urgency="'normal'",
        priority="1 + (g % 7 = 0)::int * -1",
        status="CASE WHEN g % 52 = 0 THEN 'queued' WHEN g % 52 = 1 THEN 'collecting' ELSE 'sent' END",
        digest_group="CASE WHEN g % 52 = 1 THEN 'r|k' || g || '|c' END",
        next_attempt_at="now() - (g % 600) * interval '1 second'",
        occurred_at="now() - g * interval '1 second'",
        sent_at="CASE WHEN g % 52 > 1 THEN now() - g * interval '1 minute' END",
    )
    return url


async def test_dispatcher_due_scan_and_cap_count_use_their_partial_indexes(notifications_queue):
    import datetime as dt

    from crm_notifications.clock import ManualClock
    from crm_notifications.delivery.dispatcher import Dispatcher
    from crm_notifications.settings import NotificationsSettings

    url = notifications_queue
    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    db = Database(url)
    try:
        dispatcher = Dispatcher(db, {}, NotificationsSettings(database_url=url, dispatcher_batch_size=50), ManualClock(now))
        with counting(db.engine) as log:
            assert await dispatcher.run_once() == 50
    finally:
        await db.dispose()
    [waiting] = [(s, p) for s, p in log.selects(touching="nf_messages") if "'collecting', 'queued', 'deferred'" in s and "LIMIT" in s]
    tree = await assert_indexed(url, *waiting, "nf_messages", indexes={"ix_nf_messages_waiting"})
    assert "Sort" not in describe(tree), f"the due scan sorts instead of reading the index in order:\n{describe(tree)}"
    [lapsed] = [(s, p) for s, p in log.selects(touching="nf_messages") if "'sending'" in s and "LIMIT" in s]
    await assert_indexed(url, *lapsed, "nf_messages", indexes={"ix_nf_messages_leased"})
    [capped] = log.selects(touching="count(")
    await assert_indexed(url, *capped, "nf_messages", indexes={"ix_nf_messages_capped_sent"})


async def test_open_digest_lookup_uses_its_partial_index(notifications_queue):
    import datetime as dt

    from crm_notifications.delivery import pipeline
    from crm_notifications.preferences.policy import ContactView

    url = notifications_queue
    spec = pipeline.Spec(
        "r", "r", "shipment_delayed", "customer_contacts", "email", "shipment_status", digest_window_s=900, digest_key="customer_id"
    )
    db = Database(url)
    try:
        with counting(db.engine) as log:
            async with db.transaction() as session:
                await pipeline.enqueue(
                    session,
                    spec,
                    pipeline.Trigger("e1", "ShipmentDelayed", "c", {}),
                    pipeline.Recipient("k53", ContactView("k53", addresses={"email": "a@example.com"})),
                    {},
                    dt.datetime.now(dt.UTC),
                )
    finally:
        await db.dispose()
    [lookup] = log.selects(touching="digest_group =")
    await assert_indexed(url, *lookup, "nf_messages", indexes={"ix_nf_messages_digest_open"})
