"""TMS incidents open complaints; directory and tier events; inbox idempotency; the real broker end to end."""

import datetime as dt
from decimal import Decimal

import orjson
from sqlalchemy import func, select

from complaints_support import ALL_WEEK, STAFF, close_env, make_env, seed_team
from crm_common.bus import KafkaPublisher
from crm_common.consumer import Delivery, InboxProcessor
from crm_common.events import encode_envelope, make_event
from crm_common.events.customers import ContactSnapshot, CustomerErased, CustomerMerged, CustomerRegistered
from crm_common.events.logistics import ShipmentDamaged, ShipmentDelayed, ShipmentLost
from crm_common.events.scoring import CustomerScored, CustomerTierChanged
from crm_complaints.complaints.handlers import CustomerDirectoryHandler, ShipmentIncidentHandler
from crm_complaints.complaints.models import Complaint, ComplaintReference, DirectoryContact, DirectoryCustomer, TimelineEntry
from crm_devbroker.testing import RefusingDeadLetters, read_events, wait_until

NOW = dt.datetime(2026, 9, 21, 2, 0, tzinfo=dt.UTC)


def delivery(envelope, topic, offset):
    return Delivery(topic, 0, offset, envelope.key.encode(), encode_envelope(envelope))


async def complaints(env):
    async with env.db.sessions() as session:
        return (await session.scalars(select(Complaint).order_by(Complaint.filed_at))).all()


async def test_shipment_incidents_open_or_attach_and_redelivery_changes_nothing(env):
    await seed_team(env.db, "claims", {"c1": ALL_WEEK})
    await seed_team(env.db, "transport", {"t1": ALL_WEEK})
    processor = InboxProcessor(env.db, ShipmentIncidentHandler(env.settings), RefusingDeadLetters())
    damaged = make_event(
        ShipmentDamaged(
            order_id="O-1",
            customer_id="shipper-7",
            tracking_number="SF1",
            description="crushed carton",
            estimated_loss=Decimal("15000"),
            reported_at=NOW,
        ),
        key="shipper-7",
        producer="tms",
    )
    await processor.process([delivery(damaged, "logistics.orders", 0)])
    await processor.process([delivery(damaged, "logistics.orders", 0)])  # redelivered: the inbox absorbs it
    rows = await complaints(env)
    assert len(rows) == 1
    complaint = rows[0]
    assert (complaint.customer_id, complaint.category, complaint.channel, complaint.team_id) == ("shipper-7", "damage", "tms", "claims")
    assert complaint.priority == "P1"  # damage P2, raised by the 15 000 estimated loss
    assert complaint.source_event_id == str(damaged.event_id)

    lost = make_event(
        ShipmentLost(order_id="O-1", customer_id="shipper-7", tracking_number="SF1-B", reported_at=NOW), key="shipper-7", producer="tms"
    )
    short = make_event(
        ShipmentDelayed(order_id="O-2", customer_id="shipper-7", delay_minutes=60, reported_at=NOW), key="shipper-7", producer="tms"
    )
    long = make_event(
        ShipmentDelayed(order_id="O-3", customer_id="shipper-7", delay_minutes=env.settings.delay_threshold_minutes, reported_at=NOW),
        key="shipper-7",
        producer="tms",
    )
    await processor.process(
        [delivery(lost, "logistics.orders", 1), delivery(short, "logistics.orders", 2), delivery(long, "logistics.orders", 3)]
    )
    rows = await complaints(env)
    assert [(c.category, c.team_id) for c in rows] == [("damage", "claims"), ("delay", "transport")]
    async with env.db.sessions() as session:
        refs = (
            await session.scalars(
                select(ComplaintReference.value).where(ComplaintReference.complaint_id == complaint.id).order_by(ComplaintReference.id)
            )
        ).all()
        assert list(refs) == ["O-1", "SF1", "SF1-B"]
        attached = (
            await session.scalars(
                select(TimelineEntry).where(TimelineEntry.complaint_id == complaint.id, TimelineEntry.kind == "shipment_event")
            )
        ).all()
        assert [e.data["event_type"] for e in attached] == ["ShipmentLost"]


async def test_directory_events_resolve_customers_and_merges(env):
    await seed_team(env.db, "transport", {"t1": ALL_WEEK})
    processor = InboxProcessor(env.db, CustomerDirectoryHandler(env.settings), RefusingDeadLetters())
    events = [
        make_event(
            CustomerRegistered(
                customer_id="A",
                name="Alpha",
                region="East",
                contacts=[ContactSnapshot(contact_id="ca", phone="13800000001", email="a@x.cn", language="en")],
            ),
            key="A",
            producer="profile",
        ),
        make_event(
            CustomerRegistered(customer_id="B", name="Beta", contacts=[ContactSnapshot(contact_id="cb", phone="13800000002")]),
            key="B",
            producer="profile",
        ),
        make_event(
            CustomerTierChanged(customer_id="A", new_tier="key_account", reason="top 1%", changed_at=NOW), key="A", producer="scoring"
        ),
    ]
    await processor.process([delivery(e, "crm.customers", i) for i, e in enumerate(events)])
    filed = await env.client.post(
        "/complaints", json={"phone": "13800000001", "category": "delay", "description": "late", "channel": "call_center"}
    )
    assert filed.status_code == 201
    assert (filed.json()["customer_id"], filed.json()["priority"], filed.json()["language"]) == ("A", "P2", "en")

    merged = make_event(CustomerMerged(survivor_id="A", merged_id="B", merged_at=NOW), key="A", producer="profile")
    await processor.process([delivery(merged, "crm.customers", 10)])
    by_old_phone = await env.client.post(
        "/complaints", json={"phone": "13800000002", "category": "other", "description": "x", "channel": "web"}
    )
    assert by_old_phone.json()["customer_id"] == "A"
    by_old_id = await env.client.post("/complaints", json={"customer_id": "B", "category": "other", "description": "y", "channel": "web"})
    assert by_old_id.json()["customer_id"] == "A"

    erased = make_event(CustomerErased(customer_id="A", contact_id="ca", erased_at=NOW), key="A", producer="profile")
    await processor.process([delivery(erased, "crm.customers", 11)])
    async with env.db.sessions() as session:
        assert await session.get(DirectoryContact, "ca") is None
        complaint = await session.get(Complaint, filed.json()["id"])
        assert complaint.reporter_phone is None and complaint.contact_id is None
        assert (await session.get(DirectoryCustomer, "A")).tier == "key_account"
    gone = await env.client.post("/complaints", json={"phone": "13800000001", "category": "delay", "description": "late", "channel": "web"})
    assert gone.status_code == 422


async def test_real_broker_directory_and_shipment_damaged_open_a_complaint_and_events_are_published(database_factory, kafka_settings):
    env = await make_env(database_factory, "postgres", kafka=kafka_settings, run_consumers=True, run_outbox_relay=True)
    try:
        await seed_team(env.db, "claims", {"c1": ALL_WEEK})
        await env.runtime.start(skip_loops={"sla-scheduler"})
        publisher = KafkaPublisher(kafka_settings, client_id="tms-test")
        registered = make_event(
            CustomerRegistered(
                customer_id="shipper-k", name="K Logistics Buyer", contacts=[ContactSnapshot(contact_id="ck", phone="13712345678")]
            ),
            key="shipper-k",
            producer="customer-profile",
        )
        scored = make_event(
            CustomerScored(customer_id="shipper-k", credit_grade="A", tier="ordinary", scored_at=NOW), key="shipper-k", producer="scoring"
        )
        await publisher.publish(registered)
        await publisher.publish(scored)
        event = make_event(
            ShipmentDamaged(order_id="ORD-K", customer_id="shipper-k", tracking_number="YT-1", reported_at=NOW),
            key="shipper-k",
            producer="tms",
        )
        await publisher.publish(event)
        await publisher.publish(event)  # duplicate delivery
        await publisher.stop()

        async def directory_ready():
            async with env.db.sessions() as session:
                customer = await session.get(DirectoryCustomer, "shipper-k")
                contact = await session.get(DirectoryContact, "ck")
                return customer is not None and customer.credit_grade == "A" and contact is not None

        await wait_until(directory_ready, timeout_s=30)

        async def filed():
            async with env.db.sessions() as session:
                return await session.scalar(select(func.count()).select_from(Complaint))

        await wait_until(filed, timeout_s=30)
        found = await read_events(kafka_settings, "crm.complaints", count=2, timeout_s=20)
        assert [e.type for e in found] == ["ComplaintFiled", "ComplaintAssigned"]
        assert found[0].key == "shipper-k"
        payload = found[0].payload
        assert payload["order_ids"] == ["ORD-K"] and payload["tracking_numbers"] == ["YT-1"] and payload["category"] == "damage"
        assert await filed() == 1
        assert orjson.loads(orjson.dumps(found[1].payload))["agent"] == "c1"
        by_phone = (
            await env.client.get(
                "/complaints/lookup", params={"phone": "137 1234 5678"}, headers={"X-Actor-Id": "a", "X-Actor-Role": "admin"}
            )
        ).json()
        assert [r["complaint"]["order_ids"] for r in by_phone] == [["ORD-K"]]
    finally:
        await close_env(env)


async def test_tier_upgrade_raises_open_complaints_and_tightens_their_clocks(env):
    from complaints_support import seed_customer, shanghai
    from crm_complaints.complaints import intake, lifecycle
    from crm_complaints.complaints.access import Actor
    from crm_complaints.complaints.models import SlaClockRow
    from crm_complaints.complaints.schemas import ComplaintCreate
    from crm_complaints.complaints.sla import BusinessCalendar

    await seed_customer(env.db, "grower")
    await seed_team(env.db, "transport", {"t1": ALL_WEEK})
    filed = shanghai(2026, 9, 21, 9, 0)
    ids = []
    for order in ("a", "b"):
        async with env.runtime.transaction() as session:
            body = {"customer_id": "grower", "category": "delay", "description": "late", "channel": "web", "order_ids": [order]}
            ids.append((await intake.file_complaint(session, ComplaintCreate(**body), settings=env.settings, now=filed)).id)
    async with env.runtime.transaction() as session:  # the second one is already answered
        await lifecycle.reply(
            session, ids[1], "on it", actor=Actor("t1", "agent", "transport"), settings=env.settings, now=shanghai(2026, 9, 21, 9, 30)
        )
    processor = InboxProcessor(env.db, CustomerDirectoryHandler(env.settings), RefusingDeadLetters())
    upgrade = make_event(
        CustomerTierChanged(customer_id="grower", old_tier="ordinary", new_tier="key_account", reason="growth", changed_at=NOW),
        key="grower",
        producer="scoring",
    )
    await processor.process([delivery(upgrade, "crm.scoring", 0)])
    await processor.process([delivery(upgrade, "crm.scoring", 0)])  # redelivered: nothing changes twice
    async with env.db.sessions() as session:
        rows = {c.id: c for c in (await session.scalars(select(Complaint))).all()}
        assert [rows[i].priority for i in ids] == ["P2", "P2"]
        clocks = {(c.complaint_id, c.kind): c for c in (await session.scalars(select(SlaClockRow))).all()}
        notes = (await session.scalars(select(TimelineEntry).where(TimelineEntry.kind == "reprioritized"))).all()
    assert len(notes) == 2
    calendar = BusinessCalendar(timezone="Asia/Shanghai")
    # P2 targets (60 / 480) replace P3 (240 / 960); time already used is kept
    assert clocks[(ids[0], "first_response")].target_minutes == 60
    assert clocks[(ids[0], "resolution")].deadline_at == calendar.add_business_minutes(filed, 480)
    assert clocks[(ids[1], "first_response")].target_minutes == 240  # stopped at the reply: keeps its target
    downgrade = make_event(
        CustomerTierChanged(customer_id="grower", old_tier="key_account", new_tier="small", reason="decline", changed_at=NOW),
        key="grower",
        producer="scoring",
    )
    await processor.process([delivery(downgrade, "crm.scoring", 1)])
    async with env.db.sessions() as session:
        assert [(await session.get(Complaint, i)).priority for i in ids] == ["P2", "P2"]  # never lowered


async def test_a_complaint_opened_from_a_tms_incident_carries_its_description_as_a_message_key(env):
    """The description the service writes keeps its English text and carries a key with parameters (issue 19 point 6),
    in the table, the API, the lookup page and the timeline; the batch path opens and attaches as before."""
    await seed_team(env.db, "transport", {"t1": ALL_WEEK})
    await seed_team(env.db, "claims", {"c1": ALL_WEEK})
    processor = InboxProcessor(env.db, ShipmentIncidentHandler(env.settings), RefusingDeadLetters())
    minutes = env.settings.delay_threshold_minutes + 30
    delayed = make_event(
        ShipmentDelayed(order_id="O-9", customer_id="shipper-7", delay_minutes=minutes, reason="港口拥堵", reported_at=NOW),
        key="shipper-7",
        producer="tms",
    )
    lost = make_event(ShipmentLost(order_id="O-9", customer_id="shipper-7", reported_at=NOW), key="shipper-7", producer="tms")
    damaged = make_event(ShipmentDamaged(order_id="O-10", customer_id="shipper-7", reported_at=NOW), key="shipper-7", producer="tms")
    await processor.process(
        [delivery(delayed, "logistics.orders", 0), delivery(lost, "logistics.orders", 1), delivery(damaged, "logistics.orders", 2)]
    )

    rows = {c.category: c for c in await complaints(env)}
    assert set(rows) == {"delay", "damage"}  # the loss attached to the open delay of O-9
    delay = rows["delay"]
    assert delay.description == f"[TMS] Shipment delayed {minutes} minutes (order O-9): 港口拥堵"  # the English as before
    assert delay.description_key == "description.shipment_delayed_reason"
    assert delay.description_params == {"order_id": "O-9", "delay_minutes": minutes, "reason": "港口拥堵"}
    assert rows["damage"].description == "[TMS] Shipment damaged (order O-10): Shipment reported damaged"
    assert (rows["damage"].description_key, rows["damage"].description_params) == (
        "description.shipment_damaged_unexplained",
        {"order_id": "O-10"},
    )

    shown = (await env.client.get(f"/complaints/{delay.id}", headers=STAFF)).json()
    assert (shown["description"], shown["description_key"], shown["description_params"]) == (
        delay.description,
        delay.description_key,
        delay.description_params,
    )
    page = (await env.client.get(f"/complaints/lookup?number={delay.number}", headers=STAFF)).json()
    found = page[0]["complaint"]
    assert (found["description_key"], found["description_params"]) == (delay.description_key, delay.description_params)

    async with env.db.sessions() as session:
        entries = (
            await session.scalars(select(TimelineEntry).where(TimelineEntry.complaint_id == delay.id).order_by(TimelineEntry.id))
        ).all()
    by_kind = {e.kind: e for e in entries}
    assert (by_kind["filed"].body, by_kind["filed"].message_key) == (delay.description, "description.shipment_delayed_reason")
    assert by_kind["shipment_event"].body == "[TMS] Shipment lost (order O-9)"
    assert (by_kind["shipment_event"].message_key, by_kind["shipment_event"].message_params) == (
        "description.shipment_lost",
        {"order_id": "O-9"},
    )
