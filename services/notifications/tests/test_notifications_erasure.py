"""CustomerErased: the person disappears from every table and text column of the notifications database
(messages, notifications, attempts, inbox tasks, outbox, directory, preferences), the delivery log keeps its
ids, statuses, timestamps and counts, the idempotency keys still hold, and nothing is sent to them again,
not even a send that was in flight when the erasure arrived. On SQLite and PostgreSQL."""

import json

from sqlalchemy import select

from crm_common.events.complaints import ComplaintFiled
from crm_common.events.customers import CustomerErased
from crm_common.outbox import outbox_table
from crm_notifications.channels.base import ChannelError
from crm_notifications.delivery import pipeline
from crm_notifications.delivery.dispatcher import Dispatcher
from crm_notifications.delivery.models import InboxTask, Message, Notification
from crm_notifications.directory.erasure import Scrubber, address_hash
from crm_notifications.preferences import service as preferences
from crm_notifications.preferences.schemas import PreferencesIn
from crm_notifications.rules import service as rules
from crm_notifications.rules.schemas import RuleIn
from crm_notifications.templates import service as templates
from notifications_support import T0, EventFeeder, customer_registered, event, find_person, new_id

GONE = {
    "contact_id": "k-gone",
    "name": "Ouyang Xiaoming",
    "email": "ouyang.xm@erase-me.example",
    "phone": "+86 139 8765 4321",
    "language": "en",
}
KEPT = {"contact_id": "k-kept", "name": "Situ Jianguo", "email": "situ.jg@keep-me.example", "phone": "13711223344", "language": "en"}
WEBHOOK = "https://hooks.erase-me.example/inbound"


def needles(person):
    return {"name": person["name"], "email": person["email"], "phone": "".join(ch for ch in person["phone"] if ch.isdigit())[-11:]}


def reported_by_gone(number, **reporter):
    """A complaint filed by phone: no contact id, the person's details as the reporter (formatted differently)."""
    fields = {"reporter_name": GONE["name"], "reporter_phone": "139-8765-4321", "reporter_email": GONE["email"]} | reporter
    return event(
        ComplaintFiled(
            complaint_id=new_id(),
            complaint_number=number,
            customer_id="cx",
            category="delay",
            priority="P3",
            channel="call_center",
            language="en",
            filed_at=T0,
            **fields,
        )
    )


class RefusingEmail:
    """A mail server that refuses every recipient, quoting the address (as real ones do)."""

    async def send(self, message):
        raise ChannelError(f"550 5.1.1 <{message.address}>: mailbox unavailable", transient=False)


async def _setup(nf):
    async with nf.transaction() as session:
        await templates.save_version(
            session,
            key="reporter_note",
            language="en",
            subject="Complaint {{ complaint_number }} filed by {{ reporter_name }}",
            body="{{ reporter_name }} ({{ reporter_phone }}, {{ reporter_email }}) filed {{ complaint_number }}.",
            variables=["complaint_number", "reporter_name", "reporter_phone", "reporter_email"],
        )
        # the colleagues hear about it by email, the account manager gets an inbox task: both quote the reporter
        await rules.create(
            session,
            RuleIn(
                name="colleague-note",
                event_type="ComplaintFiled",
                template_key="reporter_note",
                audience="customer_contacts",
                channel="email",
                category="account_service",
            ),
        )
        await rules.create(
            session,
            RuleIn(
                name="am-note",
                event_type="ComplaintFiled",
                template_key="reporter_note",
                audience="account_manager",
                channel="inbox",
                category="internal_tasks",
            ),
        )
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("cx", [GONE, KEPT], account_manager="am-1"))
    async with nf.transaction() as session:
        await preferences.update(
            session,
            GONE["contact_id"],
            PreferencesIn.model_validate({"categories": {"marketing": {"opted_in": False}}, "addresses": {"webhook": WEBHOOK}}),
        )
    return feeder


async def _rows(nf, model, *order):
    async with nf.db.sessions() as session:
        return list((await session.scalars(select(model).order_by(*order))).all())


async def test_erasing_a_contact_leaves_no_trace_and_keeps_the_log_meaningful(nf, smtp, clock):
    feeder = await _setup(nf)
    first = reported_by_gone("CP-1")
    await feeder.feed(first)
    assert await nf.dispatcher.run_once() == 4  # acknowledgement to the reporter, a note to each contact, the inbox task
    to_gone_before = [m for m in smtp.messages if m["To"] == GONE["email"]]
    assert len(to_gone_before) == 2
    second = reported_by_gone("CP-2")
    await feeder.feed(second)
    refusing = Dispatcher(nf.db, {"email": RefusingEmail(), "inbox": nf.channels["inbox"]}, nf.settings, clock)
    await refusing.run_once()  # permanent failures: the address is quoted in last_error and in NotificationFailed
    third = reported_by_gone("CP-3")
    await feeder.feed(third)  # queued, not sent yet

    before = await find_person(nf.db, **needles(GONE))
    for place in (
        "nf_contacts.email: email",
        "nf_messages.address: email",
        "nf_messages.recipient_key: email",
        "nf_messages.body: phone",
        "nf_messages.last_error: email",
        "nf_notifications.recipient_key: email",
        "nf_notifications.variables: name",
        "nf_notifications.variables: phone",
        "nf_inbox_tasks.body: name",
        "outbox.body: email",
    ):
        assert place in before, (place, before)  # the data really reached every place searched below
    webhook = {"name": "hooks.erase-me.example", "email": "hooks.erase-me.example", "phone": "0" * 11}
    assert "nf_contact_addresses.address: email" in await find_person(nf.db, **webhook)
    messages_before = {m.id: m for m in await _rows(nf, Message, Message.id)}
    notifications_before = {n.id: n for n in await _rows(nf, Notification, Notification.id)}
    outbox_before = await _outbox(nf)
    assert any(r.event_type == "NotificationFailed" and GONE["email"] in r.body for r in outbox_before)
    queued_for_gone = {
        m.id
        for m in messages_before.values()
        if m.status == "queued" and m.channel != "inbox" and m.contact_id in (GONE["contact_id"], None)
    }
    queued_for_kept = {m.id for m in messages_before.values() if m.status == "queued" and m.contact_id == KEPT["contact_id"]}
    assert len(queued_for_gone) == 2 and len(queued_for_kept) == 1  # CP-3: acknowledgement + note to the person, note to the colleague

    await feeder.feed(event(CustomerErased(customer_id="cx", contact_id=GONE["contact_id"], erased_at=T0)))

    assert await find_person(nf.db, **needles(GONE)) == []
    assert await find_person(nf.db, **webhook) == []  # the webhook URL too
    kept = await find_person(nf.db, **needles(KEPT))  # targeted: the colleague is untouched
    for place in ("nf_contacts.email: email", "nf_messages.address: email", "nf_messages.last_error: email", "outbox.body: email"):
        assert place in kept, (place, kept)

    # the log keeps its shape: same rows, ids, timestamps, attempt and item counts; pending messages to the person suppressed
    messages = {m.id: m for m in await _rows(nf, Message, Message.id)}
    assert messages.keys() == messages_before.keys()
    for message_id, message in messages.items():
        old = messages_before[message_id]
        assert (message.created_at, message.attempts, message.item_count, message.channel, message.sent_at) == (
            old.created_at,
            old.attempts,
            old.item_count,
            old.channel,
            old.sent_at,
        )
        if message_id in queued_for_gone:
            assert (message.status, message.reason) == ("suppressed", "contact erased")
        elif old.contact_id == GONE["contact_id"] or old.contact_id is None and old.channel != "inbox":
            assert message.status == old.status and message.address is None and message.subject == "[erased]"
        else:
            assert message.status == old.status
    notifications = {n.id: n for n in await _rows(nf, Notification, Notification.id)}
    assert notifications.keys() == notifications_before.keys()
    for notification_id, notification in notifications.items():
        old = notifications_before[notification_id]
        assert (notification.event_id, notification.rule_id, notification.message_id) == (old.event_id, old.rule_id, old.message_id)
        if old.recipient_key.startswith("reporter:"):
            assert notification.recipient_key == "erased:k-gone"
        else:
            assert notification.recipient_key == old.recipient_key  # contact ids and staff keys are not PII
    tasks = await _rows(nf, InboxTask, InboxTask.created_at)
    assert [t.body for t in tasks] == ["[erased] ([erased], [erased]) filed CP-1.", "[erased] ([erased], [erased]) filed CP-2."]
    outbox = await _outbox(nf)
    assert [(r.event_id, r.event_type) for r in outbox] == [(r.event_id, r.event_type) for r in outbox_before]
    assert all(json.loads(r.body) for r in outbox)  # still valid envelopes

    # the same events again past the inbox: the idempotency keys still hold, nothing new
    async with nf.transaction() as session:
        for envelope in (first, second, third):
            assert (
                await pipeline.process_trigger(
                    session,
                    pipeline.trigger_from_event(envelope, envelope.parsed()),
                    clock.now(),
                    erasure_secret=nf.settings.erasure_secret.get_secret_value(),
                )
                == []
            )
    # events still in flight that name the person (as a contact or as a reporter, any formatting) produce nothing
    await feeder.feed(
        reported_by_gone("CP-4", reporter_email=GONE["email"].upper()),
        reported_by_gone("CP-5", reporter_email=None, reporter_phone="13987654321"),
        event(
            ComplaintFiled(
                complaint_id=new_id(),
                complaint_number="CP-6",
                customer_id="cx",
                category="delay",
                priority="P3",
                channel="hotline",
                contact_id=GONE["contact_id"],
                filed_at=T0,
            )
        ),
    )
    async with nf.db.sessions() as session:
        new = (await session.scalars(select(Message).where(Message.id.not_in(list(messages))))).all()
    assert new and all(m.contact_id == KEPT["contact_id"] or m.channel == "inbox" for m in new)  # the colleague still hears
    mailed = len(smtp.messages)
    clock.advance(seconds=60)
    await nf.dispatcher.run_once()
    assert [m for m in smtp.messages if m["To"] == GONE["email"]] == to_gone_before
    to_kept = [m for m in smtp.messages[mailed:] if m["To"] == KEPT["email"]]  # up to the daily cap, in any order
    subjects = [m["Subject"] for m in to_kept]
    assert subjects and all(s.endswith("filed by [erased]") for s in subjects if "CP-6" not in s), subjects  # CP-6 has no reporter
    assert await find_person(nf.db, **needles(GONE)) == []


async def _outbox(nf):
    async with nf.db.sessions() as session:
        return (
            await session.execute(
                select(outbox_table.c.event_id, outbox_table.c.event_type, outbox_table.c.body).order_by(outbox_table.c.id)
            )
        ).all()


class ErasedWhileSending:
    """The erasure commits while the provider is being called, then the call fails with a transient error."""

    def __init__(self, nf, clock):
        self.nf, self.clock, self.calls = nf, clock, 0

    async def send(self, message):
        self.calls += 1
        async with self.nf.transaction() as session:
            await self.nf.handler.handle(session, _Event(CustomerErased(customer_id="cx", contact_id=GONE["contact_id"], erased_at=T0)))
        raise ChannelError(f"421 try again later <{message.address}>", transient=True)


class _Event:
    def __init__(self, payload):
        self.payload = payload


async def test_a_send_in_flight_when_the_contact_is_erased_is_never_retried(nf, clock):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("cx", [GONE]))
    await feeder.feed(
        event(
            ComplaintFiled(
                complaint_id=new_id(),
                complaint_number="CP-9",
                customer_id="cx",
                category="delay",
                priority="P3",
                channel="hotline",
                contact_id=GONE["contact_id"],
                filed_at=T0,
            )
        )
    )
    channel = ErasedWhileSending(nf, clock)
    dispatcher = Dispatcher(nf.db, {"email": channel}, nf.settings, clock)
    assert await dispatcher.run_once() == 1 and channel.calls == 1
    [message] = await _rows(nf, Message, Message.id)
    assert (message.status, message.reason, message.last_error, message.address) == ("suppressed", "contact erased", None, None)
    clock.advance(hours=2)
    assert await dispatcher.run_once() == 0 and channel.calls == 1
    assert await find_person(nf.db, **needles(GONE)) == []


def test_addresses_match_in_any_formatting_and_text_is_scrubbed():
    def h(address, secret="k"):
        return address_hash(address, secret)

    assert h("+86 139-8765-4321") == h("13987654321") == h("0086 139 8765 4321")
    assert h("Ouyang.XM@Erase-Me.example ") == h("ouyang.xm@erase-me.example")
    assert h("13987654321") != h("13987654322") and h(None) is None
    assert h("13987654321") != h("13987654321", "other secret")  # keyed: not a plain hash anyone can recompute
    scrub = Scrubber([GONE["name"]], [GONE["email"]], [GONE["phone"]])
    text = "Call OUYANG Xiaoming on (139) 8765-4321 or +86 13987654321, mail Ouyang.XM@erase-me.example; ticket 2026-000321"
    assert scrub.text(text) == "Call [erased] on [erased] or [erased], mail [erased]; ticket 2026-000321"
    assert scrub.data({"a": [text], "n": 3}) == {"a": [scrub.text(text)], "n": 3}
