"""CustomerErased: the complaints service forgets the person (reporter details, free text, stored responses,
outbox bodies), keeps everything else (ids, numbers, categories, references, timestamps), and leaves other
people alone (a colleague of the same customer, a namesake at another customer)."""

import datetime as dt
import re

import orjson
import pytest
from sqlalchemy import MetaData, select

from complaints_support import ALL_WEEK, STAFF, seed_team
from crm_common.consumer import Delivery, InboxProcessor
from crm_common.events import encode_envelope, make_event
from crm_common.events.customers import ContactSnapshot, CustomerErased, CustomerRegistered, CustomerUpdated
from crm_common.outbox import outbox_table
from crm_common.privacy import TOMBSTONE, Person
from crm_complaints.complaints.handlers import CustomerDirectoryHandler
from crm_complaints.complaints.models import Complaint, ComplaintReference, DirectoryContact, DirectoryCustomer, TimelineEntry

NOW = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)
ERASED = {"id": "c-erased", "name": "Ouyang Xiaoming", "phone": "+8613987654321", "email": "ouyang.xm@erase-me.example"}
KEPT = {"id": "c-kept", "name": "Situ Jianguo", "phone": "+8613711223344", "email": "situ.jg@keep-me.example"}


class NoDeadLetters:
    async def send(self, *args, **kwargs):
        raise AssertionError(f"unexpected dead letter {args[:1]}")


class Feed:
    def __init__(self, env):
        self.processor = InboxProcessor(env.db, CustomerDirectoryHandler(env.settings), NoDeadLetters())
        self.offset = 0

    async def send(self, payload, key):
        envelope = make_event(payload, key=key, producer="customer-profile")
        await self.resend(envelope)
        return envelope

    async def resend(self, envelope):
        self.offset += 1
        await self.processor.process([Delivery("crm.customers", 0, self.offset, envelope.key.encode(), encode_envelope(envelope))])


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


async def find_person(db, person: dict, *, except_complaints: tuple[str, ...] = ()) -> list[str]:
    """Every table.column (any textual column of any table) holding the person's name, email or national phone digits
    (rows of the complaints `except_complaints` left out)."""
    needles = {"name": person["name"].lower(), "email": person["email"].lower(), "phone": person["phone"][3:]}
    metadata = MetaData()
    hits = set()
    async with db.engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        for table in metadata.sorted_tables:
            for row in (await connection.execute(select(table))).mappings():
                if (row.get("complaint_id") or (row.get("id") if table.name == "complaints" else None)) in except_complaints:
                    continue
                for column, value in row.items():
                    if not isinstance(value, (str, dict, list)):
                        continue
                    text = value if isinstance(value, str) else orjson.dumps(value).decode()
                    for kind, needle in needles.items():
                        if (needle in digits(text)) if kind == "phone" else (needle in text.lower()):
                            hits.add(f"{table.name}.{column}: {kind}")
    return sorted(hits)


def contact(person: dict, **extra) -> ContactSnapshot:
    return ContactSnapshot(contact_id=person["id"], name=person["name"], phone=person["phone"], email=person["email"], **extra)


async def file(env, body: dict, **headers) -> dict:
    response = await env.client.post("/complaints", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_erasing_a_contact_forgets_the_person_and_keeps_the_rest(env):
    await seed_team(env.db, "transport", {"t1": ALL_WEEK})
    await seed_team(env.db, "customer_service", {"s1": ALL_WEEK})
    feed = Feed(env)
    await feed.send(CustomerRegistered(customer_id="E1", name="Erasure Trading", contacts=[contact(ERASED), contact(KEPT)]), "E1")
    await feed.send(CustomerRegistered(customer_id="OTHER", name="Other Co", contacts=[]), "OTHER")

    # filed by customer id (no contact id on the complaint): the reporter is recognised by the directory's phone/email/name
    mine = await file(
        env,
        {
            "customer_id": "E1",
            "category": "delay",
            "channel": "call_center",
            "order_ids": ["O-9"],
            "tracking_numbers": ["SF7700112233"],
            "description": f"Parcel late. Call back {ERASED['name']} on 139 8765 4321 or {ERASED['email'].upper()}",
            "desired_outcome": f"refund to {ERASED['name']}",
            "reporter": {"name": ERASED["name"], "phone": "139-8765-4321", "email": ERASED["email"]},
        },
        **{"Idempotency-Key": "erase-key-1"},
    )
    assert mine["reporter"]["email"] == ERASED["email"]
    message = await env.client.post(
        f"/complaints/{mine['id']}/customer-messages",
        headers=STAFF,
        json={"body": "She says: reach me on +86 139 8765 4321 (ask for ouyang xiaoming)"},
    )
    assert message.status_code in (200, 201), message.text
    note = await env.client.post(f"/complaints/{mine['id']}/notes", headers=STAFF, json={"body": f"Spoke to {ERASED['name']}, 13987654321"})
    assert note.status_code in (200, 201), note.text
    # a colleague's complaint mentioning the person: reporter kept, mention scrubbed
    colleague = await file(
        env,
        {
            "customer_id": "E1",
            "category": "billing",
            "channel": "email",
            "description": f"Invoice wrong, copy {ERASED['email']} and me",
            "reporter": {"name": KEPT["name"], "phone": KEPT["phone"], "email": KEPT["email"]},
        },
    )
    # a namesake at another customer is another person
    namesake = await file(
        env,
        {"customer_id": "OTHER", "category": "other", "channel": "web", "description": f"{ERASED['name']} from Other Co asks about rates"},
    )
    async with env.db.sessions() as session:
        before = await session.get(Complaint, mine["id"])
        kept_fields = (before.number, before.category, before.priority, before.customer_id, before.filed_at, before.team_id)
    assert {
        "complaints.reporter_name: name",
        "complaints.reporter_phone: phone",
        "complaints.description: phone",
        "timeline_entries.body: phone",
        "outbox.body: email",
        "idempotency_records.response_body: email",
        "directory_contacts.email: email",
    } <= set(await find_person(env.db, ERASED))

    erased = await feed.send(CustomerErased(customer_id="E1", contact_id=ERASED["id"], erased_at=NOW), "E1")
    # the profile follows with the contact tombstoned
    await feed.send(
        CustomerUpdated(
            customer_id="E1",
            name="Erasure Trading",
            changed_fields=["contacts"],
            contacts=[ContactSnapshot(contact_id=ERASED["id"], name=TOMBSTONE), contact(KEPT)],
        ),
        "E1",
    )

    assert await find_person(env.db, ERASED, except_complaints=(namesake["id"],)) == [], "PII of the erased person left"
    assert {"complaints.reporter_name: name", "complaints.reporter_email: email", "directory_contacts.phone: phone"} <= set(
        await find_person(env.db, KEPT)
    )

    async with env.db.sessions() as session:
        complaint = await session.get(Complaint, mine["id"])
        assert (complaint.reporter_name, complaint.reporter_phone, complaint.reporter_email, complaint.contact_id) == (
            None,
            None,
            None,
            None,
        )
        assert (
            complaint.number,
            complaint.category,
            complaint.priority,
            complaint.customer_id,
            complaint.filed_at,
            complaint.team_id,
        ) == kept_fields
        assert complaint.description == f"Parcel late. Call back {TOMBSTONE} on {TOMBSTONE} or {TOMBSTONE}"
        refs = (
            await session.scalars(
                select(ComplaintReference.value).where(ComplaintReference.complaint_id == mine["id"]).order_by(ComplaintReference.value)
            )
        ).all()
        assert list(refs) == ["O-9", "SF7700112233"]
        other = await session.get(Complaint, colleague["id"])
        assert (other.reporter_name, other.reporter_email) == (KEPT["name"], KEPT["email"])
        assert other.description == f"Invoice wrong, copy {TOMBSTONE} and me"
        assert (await session.get(Complaint, namesake["id"])).description.startswith(ERASED["name"])
        kinds = (await session.scalars(select(TimelineEntry.kind).where(TimelineEntry.complaint_id == mine["id"]))).all()
        assert kinds.count("person_erased") == 1 and "customer_message" in kinds
        assert (await session.get(DirectoryContact, ERASED["id"])).phone is None
        filed_bodies = [
            orjson.loads(b)
            for b in (await session.scalars(select(outbox_table.c.body).where(outbox_table.c.event_type == "ComplaintFiled"))).all()
        ]
    payload = next(b["payload"] for b in filed_bodies if b["payload"]["complaint_id"] == mine["id"])
    assert (payload["reporter_name"], payload["reporter_phone"], payload["reporter_email"]) == (None, None, None)
    assert payload["complaint_number"] == mine["number"] and payload["tracking_numbers"] == ["SF7700112233"]
    kept_payload = next(b["payload"] for b in filed_bodies if b["payload"]["complaint_id"] == colleague["id"])
    assert kept_payload["reporter_email"] == KEPT["email"]

    reads = [
        await env.client.get(f"/complaints/{mine['id']}", headers=STAFF),
        await env.client.get(f"/complaints/{mine['id']}/timeline", headers=STAFF),
        await env.client.get(
            f"/complaints/{mine['id']}", headers={"X-Actor-Id": "E1", "X-Actor-Role": "customer"}, params={"view": "customer"}
        ),
    ]
    assert [r.status_code for r in reads] == [200, 200, 200], [r.text[:300] for r in reads]
    assert reads[0].json()["number"] == mine["number"] and reads[0].json()["reporter"]["email"] is None
    for text in (r.text for r in reads):
        assert ERASED["email"] not in text and ERASED["name"].lower() not in text.lower() and "13987654321" not in digits(text)

    await feed.resend(erased)  # redelivered: the inbox absorbs it, no second timeline entry
    async with env.db.sessions() as session:
        kinds = (await session.scalars(select(TimelineEntry.kind).where(TimelineEntry.complaint_id == mine["id"]))).all()
    assert kinds.count("person_erased") == 1


async def test_erasing_a_whole_individual_customer_forgets_every_complaint_reporter(env):
    await seed_team(env.db, "transport", {"t1": ALL_WEEK})
    feed = Feed(env)
    await feed.send(
        CustomerRegistered(customer_id="IND", name=ERASED["name"], customer_type="individual", contacts=[contact(ERASED)]), "IND"
    )
    by_phone = await file(
        env,
        {
            "phone": "13987654321",
            "category": "delay",
            "channel": "call_center",
            "description": "late again",
            "reporter": {"name": "Xiaoming"},
        },
    )
    assert by_phone["customer_id"] == "IND"
    by_id = await file(
        env,
        {
            "customer_id": "IND",
            "category": "pickup",
            "channel": "web",
            "description": f"I am {ERASED['name']}",
            "reporter": {"name": ERASED["name"], "email": ERASED["email"]},
        },
    )
    assert await find_person(env.db, ERASED)

    await feed.send(CustomerErased(customer_id="IND", contact_id=None, erased_at=NOW), "IND")

    assert await find_person(env.db, ERASED) == []
    async with env.db.sessions() as session:
        for complaint_id in (by_phone["id"], by_id["id"]):
            complaint = await session.get(Complaint, complaint_id)
            assert (complaint.reporter_name, complaint.reporter_phone, complaint.reporter_email, complaint.contact_id) == (None,) * 4
            assert complaint.customer_id == "IND"
        assert (await session.get(Complaint, by_id["id"])).description == f"I am {TOMBSTONE}"
        customer = await session.get(DirectoryCustomer, "IND")
        assert customer.erased and customer.name is None
    # the reporter name "Xiaoming" was given on a complaint of the person: it is theirs and goes too
    async with env.db.sessions() as session:
        texts = (await session.scalars(select(outbox_table.c.body))).all()
    assert not any("Xiaoming" in t for t in texts)


@pytest.mark.parametrize(
    "written",
    [
        "+8613987654321",
        "+86 139 8765 4321",
        "0086-139-8765-4321",
        "86 13987654321",
        "139 8765 4321",
        "139-8765-4321",
        "(139) 8765-4321",
        "139.8765.4321",
        "13987654321",
    ],
)
def test_a_phone_is_scrubbed_however_it_is_written(written):
    person = Person.of(phones=["+8613987654321"])
    cleaned = person.scrub(f"call {written} today")
    assert TOMBSTONE in cleaned and digits(cleaned) == "" and re.fullmatch(r"call \(?\[erased\] today", cleaned), cleaned
    # a number known only in its national form is read as Chinese
    assert digits(Person.of(phones=["139 8765 4321"]).scrub(f"call {written} today")) == ""
    # not inside a longer run of digits (a tracking number that happens to contain it)
    assert person.scrub(f"waybill 7{digits(written)}9") == f"waybill 7{digits(written)}9"


def test_names_and_emails_are_scrubbed_case_and_spacing_insensitively_and_short_or_tombstoned_names_are_ignored():
    person = Person.of(names=["Ouyang Xiaoming", "X", TOMBSTONE], emails=["ouyang.xm@erase-me.example"])
    assert person.names == ("Ouyang Xiaoming",)
    assert person.scrub("OUYANG  xiaoming <Ouyang.XM@Erase-Me.example>") == f"{TOMBSTONE} <{TOMBSTONE}>"
    assert person.scrub("X marks the spot") == "X marks the spot"
    assert not Person.of(names=[None, " "], phones=["12"], emails=["not-an-address"])
