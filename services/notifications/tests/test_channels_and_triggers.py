"""Webhooks, push, the in-app inbox, escalations, reminders and the periodic scans."""

import datetime as dt
import json

import pytest_asyncio
from sqlalchemy import select

from crm_common.events.complaints import ComplaintEscalated, ComplaintResolved
from crm_common.events.customers import CustomerLost, CustomerUpdated
from crm_common.events.logistics import PaymentOverdue, ShipmentLost
from crm_notifications.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, endpoint_secret, verify_signature
from crm_notifications.delivery.models import InboxTask, Message
from crm_notifications.preferences import service as preferences
from crm_notifications.preferences.schemas import PreferencesIn
from notifications_support import T0, EventFeeder, customer_registered, event


@pytest_asyncio.fixture
async def nf(nf_sqlite):
    """Channel and trigger behaviour does not depend on the database: SQLite only (storage is covered on both elsewhere)."""
    return nf_sqlite


async def _messages(runtime):
    async with runtime.db.sessions() as session:
        return list((await session.scalars(select(Message).order_by(Message.created_at, Message.id))).all())


async def test_signed_webhook_to_a_customer_system_verifies(nf, provider):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("w1", [{"contact_id": "kw", "email": "ops@shipper.example"}]))
    async with nf.transaction() as session:
        await preferences.update(
            session,
            "kw",
            PreferencesIn(addresses={"webhook": f"{provider.url}/hooks/crm"}, categories={"shipment_status": {"channel": "webhook"}}),
        )
    await feeder.feed(event(ShipmentLost(order_id="O-77", customer_id="w1", tracking_number="SF77", reported_at=T0)))
    await nf.dispatcher.run_once()
    [(path, headers, body)] = provider.requests
    assert path == "/hooks/crm"
    async with nf.db.sessions() as session:  # the secrets the customer's IT gets from us
        shown = await preferences.show(session, "kw", webhook_master_secret=nf.settings.webhook_secret.get_secret_value())
    secret = shown.webhook_secret
    assert secret and secret != nf.settings.webhook_secret.get_secret_value()
    # the delivery as received verifies with an off-the-shelf Standard Webhooks library and the whsec_ secret
    from standardwebhooks.webhooks import Webhook

    assert Webhook(shown.webhook_signing_secret).verify(body, dict(headers))["customer_id"] == "w1"
    assert verify_signature(secret, body, headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()])
    assert not verify_signature(
        nf.settings.webhook_secret.get_secret_value(), body, headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
    )
    other_endpoint = endpoint_secret(nf.settings.webhook_secret.get_secret_value(), "another-contact")
    assert not verify_signature(other_endpoint, body, headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()])
    payload = json.loads(body)
    assert payload["customer_id"] == "w1" and payload["data"]["order_id"] == "O-77"
    [message] = await _messages(nf)
    assert message.status == "delivered" and message.channel == "webhook"


async def test_webhook_refused_with_4xx_fails_without_retry(nf, provider):
    provider.reply_status = 410
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("w2", [{"contact_id": "kw2"}]))
    async with nf.transaction() as session:
        await preferences.update(
            session, "kw2", PreferencesIn(addresses={"webhook": f"{provider.url}/hooks/gone"}, categories={"*": {"channel": "webhook"}})
        )
    await feeder.feed(event(ShipmentLost(order_id="O-78", customer_id="w2", reported_at=T0)))
    await nf.dispatcher.run_once()
    [message] = await _messages(nf)
    assert message.status == "failed" and message.attempts == 1 and "410" in message.reason


async def test_push_through_the_http_provider(nf, provider):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("p1", [{"contact_id": "kp", "language": "en"}]))
    async with nf.transaction() as session:
        await preferences.update(
            session, "kp", PreferencesIn(addresses={"push": "device-token-123456"}, categories={"*": {"channel": "push"}})
        )
    await feeder.feed(event(ShipmentLost(order_id="O-79", customer_id="p1", reported_at=T0)))
    await nf.dispatcher.run_once()
    [sent] = provider.received
    assert sent["channel"] == "push" and sent["to"] == "device-token-123456" and sent["title"].startswith("Important")


async def test_escalation_alerts_the_owner_in_the_inbox_even_in_quiet_hours(nf, clock):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("e1", [{"contact_id": "ke", "email": "e@example.com"}], name="华东冷链"))
    clock.set(dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.UTC))  # midnight in Shanghai
    await feeder.feed(
        event(
            ComplaintEscalated(
                complaint_id="x",
                complaint_number="CP-9",
                customer_id="e1",
                level=2,
                escalated_to="ops-director",
                clock="resolution",
                reason="breach",
                escalated_at=T0,
            )
        )
    )
    await nf.dispatcher.run_once()
    async with nf.db.sessions() as session:
        [task] = (await session.scalars(select(InboxTask))).all()
    assert task.assignee == "ops-director" and "CP-9" in task.title and "华东冷链" in task.title


async def test_resolution_carries_the_survey_link(nf, smtp):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("r1", [{"contact_id": "kr", "name": "Hu", "email": "hu@example.com", "language": "en"}]))
    await feeder.feed(
        event(
            ComplaintResolved(
                complaint_id="cmp-1",
                complaint_number="CP-5",
                customer_id="r1",
                outcome="refund issued",
                contact_id="kr",
                survey_url="https://survey.example/cmp-1",
                resolved_at=T0,
            )
        )
    )
    await nf.dispatcher.run_once()
    [mail] = smtp.messages
    assert "https://survey.example/cmp-1" in mail.get_content() and "refund issued" in mail.get_content()


async def test_payment_overdue_reminder(nf, smtp):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("f1", [{"contact_id": "kf", "name": "Wu", "email": "ap@example.cn"}]))
    await feeder.feed(
        event(
            PaymentOverdue(
                invoice_id="INV-42", customer_id="f1", amount="1250.50", due_date=dt.date(2026, 2, 20), days_overdue=10, reported_at=T0
            )
        )
    )
    await nf.dispatcher.run_once()
    [mail] = smtp.messages
    assert mail["Subject"] == "付款提醒：发票 INV-42" and "1250.50 CNY" in mail.get_content() and "逾期 10 天" in mail.get_content()


async def test_payment_overdue_reminder_goes_once_per_invoice_whatever_its_event_ids(nf, smtp):
    """The same overdue invoice reported again under new event ids (a re-run billing export, the demo seeded again
    after a restart) is the same occasion: one reminder. Another invoice, or the same invoice with a new due date, is not."""
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("f2", [{"contact_id": "kf2", "name": "Wu", "email": "ap2@example.cn"}]))

    def overdue(invoice_id, due, days):
        return event(PaymentOverdue(invoice_id=invoice_id, customer_id="f2", amount="900", due_date=due, days_overdue=days, reported_at=T0))

    for days in (10, 11, 12):
        await feeder.feed(overdue("INV-7", dt.date(2026, 2, 20), days))
    await feeder.feed(overdue("INV-8", dt.date(2026, 2, 20), 10))
    await feeder.feed(overdue("INV-7", dt.date(2026, 3, 20), 1))  # rescheduled, overdue again: a new occasion
    await nf.dispatcher.run_once()
    sent = sorted(m["Subject"] for m in smtp.messages)
    assert sent == ["付款提醒：发票 INV-7", "付款提醒：发票 INV-7", "付款提醒：发票 INV-8"]


async def test_renewal_and_win_back_scans_run_once_per_occasion(nf, smtp, clock):
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered(
            "s1",
            [{"contact_id": "ks1", "email": "s1@example.com", "language": "en"}],
            contract_end=dt.date(2026, 3, 20),
            account_manager="Gao",
        )
    )
    await feeder.feed(
        customer_registered(
            "s2", [{"contact_id": "ks2", "email": "s2@example.com", "marketing_consent": True}], contract_end=dt.date(2026, 9, 1)
        )
    )
    await feeder.feed(
        event(
            CustomerUpdated(
                customer_id="s2",
                name="Lost Co",
                status="lost",
                contacts=[{"contact_id": "ks2", "email": "s2@example.com", "marketing_consent": True}],
            )
        )
    )
    assert await nf.run_scans() == 1  # renewal for s1 (18 days ahead); s2 lost only today
    assert await nf.run_scans() == 0  # same occasion: nothing new
    clock.advance(days=91)  # s1's contract has ended by now; s2 has been lost for 91 days
    assert await nf.run_scans() == 1
    assert await nf.run_scans() == 0
    await nf.dispatcher.run_once()
    subjects = sorted(m["Subject"] for m in smtp.messages)
    assert subjects == ["Contract renewal reminder", "好久不见，我们想念您"]
    renewal = next(m for m in smtp.messages if m["To"] == "s1@example.com")
    assert "2026-03-20" in renewal.get_content() and "in 18 days" in renewal.get_content()


async def test_win_back_counts_from_the_lost_at_of_customer_profiles_case(nf, smtp, clock):
    """The profile stages CustomerUpdated (status lost) then CustomerLost: the email's 90 days start at the case's lost_at,
    and a customer won back (active again) gets nothing."""
    feeder = EventFeeder(nf)
    contacts = [{"contact_id": "kl", "email": "l1@example.com", "marketing_consent": True}]
    await feeder.feed(customer_registered("l1", contacts))
    lost_at = clock.now() - dt.timedelta(days=30)  # the case opened 30 days before this service read it
    await feeder.feed(event(CustomerUpdated(customer_id="l1", name="Gone Co", status="lost", contacts=contacts)))
    await feeder.feed(event(CustomerLost(customer_id="l1", case_id="c-1", cause="inactive", detail="no order", lost_at=lost_at)))
    clock.advance(days=59)
    assert await nf.run_scans() == 0  # 89 days after lost_at
    clock.advance(days=1, seconds=1)
    assert await nf.run_scans() == 1
    await nf.dispatcher.run_once()
    assert [m["To"] for m in smtp.messages] == ["l1@example.com"]

    await feeder.feed(customer_registered("l2", [{"contact_id": "kl2", "email": "l2@example.com", "marketing_consent": True}]))
    await feeder.feed(event(CustomerLost(customer_id="l2", case_id="c-2", cause="terminated", detail="status set", lost_at=clock.now())))
    await feeder.feed(
        event(
            CustomerUpdated(
                customer_id="l2",
                name="Back Co",
                status="active",
                contacts=[{"contact_id": "kl2", "email": "l2@example.com", "marketing_consent": True}],
            )
        )
    )
    clock.advance(days=120)
    await nf.run_scans()
    await nf.dispatcher.run_once()
    assert "l2@example.com" not in [m["To"] for m in smtp.messages]  # won back: no win-back email


async def test_complaint_before_its_customer_snapshot_waits_for_the_contact(nf, smtp, clock):
    from crm_common.events.complaints import ComplaintFiled

    feeder = EventFeeder(nf)
    await feeder.feed(
        event(
            ComplaintFiled(
                complaint_id="q",
                complaint_number="CP-EARLY",
                customer_id="o1",
                category="delay",
                priority="P3",
                channel="web",
                contact_id="ko",
                filed_at=T0,
            )
        )
    )
    await nf.dispatcher.run_once()
    [message] = await _messages(nf)
    assert (message.status, message.reason) == ("deferred", "waiting for contact details")
    await feeder.feed(customer_registered("o1", [{"contact_id": "ko", "email": "ko@example.com", "language": "en"}]))
    clock.advance(seconds=30)
    await nf.dispatcher.run_once()
    [mail] = smtp.messages
    assert mail["To"] == "ko@example.com" and mail["Subject"] == "We received your complaint CP-EARLY"


async def test_contact_never_known_is_given_up_after_a_day(nf, clock):
    from crm_common.events.complaints import ComplaintFiled

    await EventFeeder(nf).feed(
        event(
            ComplaintFiled(
                complaint_id="q",
                complaint_number="CP-X",
                customer_id="o2",
                category="delay",
                priority="P3",
                channel="web",
                contact_id="ghost",
                filed_at=T0,
            )
        )
    )
    clock.advance(days=1, seconds=30)
    await nf.dispatcher.run_once()
    [message] = await _messages(nf)
    assert (message.status, message.reason) == ("suppressed", "unknown contact")


async def test_delivery_confirmation_only_for_subscribed_key_accounts(nf, smtp, clock):
    from crm_common.events.logistics import OrderDelivered
    from crm_common.events.scoring import CustomerScored

    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("d1", [{"contact_id": "kd1", "email": "d1@example.com", "language": "en"}]))
    await feeder.feed(customer_registered("d2", [{"contact_id": "kd2", "email": "d2@example.com", "language": "en"}]))
    await feeder.feed(customer_registered("d3", [{"contact_id": "kd3", "email": "d3@example.com", "language": "en"}]))
    for cid in ("d1", "d2"):
        await feeder.feed(event(CustomerScored(customer_id=cid, tier="key_account", scored_at=T0)))
    async with nf.transaction() as session:
        for contact in ("kd1", "kd3"):
            await preferences.update(session, contact, PreferencesIn(categories={"delivery_confirmations": {"opted_in": True}}))
    for cid in ("d1", "d2", "d3"):
        await feeder.feed(event(OrderDelivered(order_id=f"OD-{cid}", customer_id=cid, delivered_at=T0)))
    clock.advance(hours=1)
    await nf.dispatcher.run_once()
    # d1: key account and subscribed; d2: key account, not subscribed (default off); d3: subscribed but not a key account
    assert [m["To"] for m in smtp.messages] == ["d1@example.com"]
    statuses = {m.customer_id: (m.status, m.reason) for m in await _messages(nf)}
    assert statuses == {"d1": ("sent", None), "d2": ("suppressed", "not subscribed to delivery_confirmations")}


async def test_events_for_a_merged_customer_reach_the_survivor(nf, smtp):
    from crm_common.events.customers import CustomerMerged
    from crm_common.events.logistics import PaymentOverdue

    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("m-old", [{"contact_id": "km", "email": "m@example.com", "language": "en"}]))
    await feeder.feed(customer_registered("m-new", []))
    await feeder.feed(event(CustomerMerged(survivor_id="m-new", merged_id="m-old", merged_at=T0), key="m-new"))
    await feeder.feed(
        event(
            PaymentOverdue(
                invoice_id="INV-M", customer_id="m-old", amount="10", due_date=dt.date(2026, 2, 1), days_overdue=29, reported_at=T0
            )
        )
    )
    await nf.dispatcher.run_once()
    [message] = await _messages(nf)
    assert message.customer_id == "m-new" and message.status == "sent"
    assert [m["To"] for m in smtp.messages] == ["m@example.com"]


async def test_contacts_dropped_from_the_profile_are_no_longer_addressed(nf, provider):
    feeder = EventFeeder(nf)
    both = [
        {"contact_id": "ka", "phone": "+8613800138011", "preferred_channel": "sms"},
        {"contact_id": "kb", "phone": "+8613800138012", "preferred_channel": "sms"},
    ]
    await feeder.feed(customer_registered("cr", both))
    from crm_common.events.customers import ContactSnapshot

    await feeder.feed(event(CustomerUpdated(customer_id="cr", name="CR", status="active", contacts=[ContactSnapshot(**both[1])])))
    await feeder.feed(event(ShipmentLost(order_id="O-1", customer_id="cr", reported_at=T0)))
    await nf.dispatcher.run_once()
    assert [r["to"] for r in provider.received] == ["+8613800138012"]


async def test_complaint_ack_follows_the_contacts_own_channel(nf, provider, smtp):
    from crm_common.events.complaints import ComplaintFiled

    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered(
            "pc",
            [
                {"contact_id": "kp1", "phone": "+8613800138021", "email": "p1@example.com", "preferred_channel": "sms", "language": "en"},
                {"contact_id": "kp2", "phone": "+8613800138022"},
            ],
        )
    )
    for contact in ("kp1", "kp2"):
        await feeder.feed(
            event(
                ComplaintFiled(
                    complaint_id=f"q-{contact}",
                    complaint_number=f"CP-{contact}",
                    customer_id="pc",
                    category="delay",
                    priority="P3",
                    channel="web",
                    contact_id=contact,
                    filed_at=T0,
                )
            )
        )
    await nf.dispatcher.run_once()
    # kp1 prefers SMS although it has an email; kp2 has only a phone
    assert sorted(r["to"] for r in provider.received) == ["+8613800138021", "+8613800138022"]
    assert smtp.messages == []
