"""Channels, retries, outages, restarts, preferences and erasure, on SQLite and PostgreSQL."""

import asyncio
import datetime as dt

from sqlalchemy import select

from crm_common.events.complaints import ComplaintFiled
from crm_common.events.customers import CustomerErased
from crm_common.events.logistics import PaymentOverdue as PaymentOverdueEvent
from crm_common.events.scoring import ChurnRiskRaised, CustomerTierChanged
from crm_common.outbox import outbox_table
from crm_notifications.channels.base import ChannelResult
from crm_notifications.delivery.models import Attempt, InboxTask, Message, Notification
from crm_notifications.preferences import service as preferences
from crm_notifications.preferences.schemas import PreferencesIn
from notifications_support import T0, EventFeeder, customer_registered, event, make_runtime, new_id, settings_for


async def _messages(runtime):
    async with runtime.db.sessions() as session:
        return list((await session.scalars(select(Message).order_by(Message.created_at, Message.id))).all())


async def _outbox(runtime):
    async with runtime.db.sessions() as session:
        return (await session.execute(select(outbox_table.c.event_type, outbox_table.c.body).order_by(outbox_table.c.id))).all()


def complaint_filed(customer_id, contact_id, number="CP-2026-000321"):
    return event(
        ComplaintFiled(
            complaint_id=new_id(),
            complaint_number=number,
            customer_id=customer_id,
            category="damage",
            priority="P2",
            channel="hotline",
            contact_id=contact_id,
            filed_at=T0,
        )
    )


async def _set_prefs(runtime, contact_id, **data):
    async with runtime.transaction() as session:
        await preferences.update(session, contact_id, PreferencesIn.model_validate(data))


async def test_provider_outage_retries_with_backoff_and_survives_a_restart(nf, provider, clock, db_url, smtp):
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered("c1", [{"contact_id": "k1", "name": "Zhao", "email": "zhao@example.cn", "phone": "+8613800138001"}])
    )
    await _set_prefs(nf, "k1", categories={"complaint_updates": {"channel": "sms"}})  # transactional, but the channel choice holds
    await provider.stop()  # the SMS provider is down
    await feeder.feed(complaint_filed("c1", "k1", "CP-2026-000999"))
    assert await nf.dispatcher.run_once() == 1
    [message] = await _messages(nf)
    assert (message.status, message.attempts, message.channel) == ("deferred", 1, "sms")
    assert message.next_attempt_at == T0 + dt.timedelta(seconds=20)  # sms: base 20 s
    assert message.reason.startswith("retry 1/8: sms provider unreachable")
    clock.advance(seconds=19)
    assert await nf.dispatcher.run_once() == 0  # not yet due
    clock.advance(seconds=1)
    assert await nf.dispatcher.run_once() == 1
    [message] = await _messages(nf)
    assert message.attempts == 2 and message.next_attempt_at == clock.now() + dt.timedelta(seconds=40)  # doubled

    await nf.stop()  # the service restarts while the provider is still down
    restarted = await make_runtime(settings_for(db_url, smtp_port=smtp.port, provider_url=provider.url), clock, seed=False)
    try:
        await provider.start()  # the provider comes back on the same address
        clock.advance(seconds=40)
        assert await restarted.dispatcher.run_once() == 1
        [message] = await _messages(restarted)
        assert (message.status, message.attempts) == ("delivered", 3)
        assert len(provider.received) == 1
        assert provider.received[0]["to"] == "+8613800138001" and "CP-2026-000999" in provider.received[0]["text"]
        assert provider.received[0]["idempotency_key"] == message.id
        assert [t for t, _ in await _outbox(restarted)] == ["NotificationSent"]
        async with restarted.db.sessions() as session:
            log = list((await session.scalars(select(Attempt.status).where(Attempt.message_id == message.id).order_by(Attempt.id))).all())
        assert log == ["queued", "sending", "deferred", "sending", "deferred", "sending", "delivered"]
    finally:
        await restarted.stop()


async def test_final_failure_emits_notification_failed(nf, provider, clock):
    nf.settings.retry["sms"].max_attempts = 2
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("c2", [{"contact_id": "k2", "phone": "+8613800138002", "preferred_channel": "sms"}]))
    await _set_prefs(nf, "k2", categories={"*": {"channel": "sms"}})
    await provider.stop()
    await feeder.feed(complaint_filed("c2", "k2"))
    await nf.dispatcher.run_once()
    clock.advance(seconds=20)
    await nf.dispatcher.run_once()
    [message] = await _messages(nf)
    assert message.status == "failed" and message.attempts == 2
    [(event_type, body)] = await _outbox(nf)
    assert event_type == "NotificationFailed" and '"attempts":2' in body and message.id in body
    clock.advance(days=1)
    assert await nf.dispatcher.run_once() == 0  # failed is final


async def test_restart_mid_send_sends_once_after_the_lease(nf, smtp, clock, db_url, provider):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("c3", [{"contact_id": "k3", "email": "k3@example.com", "language": "en"}]))
    await feeder.feed(complaint_filed("c3", "k3"))
    entered = asyncio.Event()

    class Hanging:
        name = "email"

        async def send(self, message):
            entered.set()
            await asyncio.sleep(3600)
            return ChannelResult("sent")

    nf.dispatcher.channels = {"email": Hanging()}
    [message_id] = await nf.dispatcher.due_ids(clock.now())
    task = asyncio.create_task(nf.dispatcher.process(message_id))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()  # the process dies in the middle of the send
    await asyncio.gather(task, return_exceptions=True)
    await nf.stop()
    restarted = await make_runtime(settings_for(db_url, smtp_port=smtp.port, provider_url=provider.url), clock, seed=False)
    try:
        assert await restarted.dispatcher.run_once() == 0  # still leased to the dead process
        clock.advance(seconds=restarted.settings.send_lease_s + 1)
        assert await restarted.dispatcher.run_once() == 1
        assert await restarted.dispatcher.run_once() == 0
        assert len(smtp.messages) == 1 and smtp.messages[0]["Message-ID"] == f"<{message_id}@crm-notifications>"
        async with restarted.db.sessions() as session:
            assert (await session.get(Message, message_id)).status == "sent"
            assert len((await session.scalars(select(Notification))).all()) == 1
    finally:
        await restarted.stop()


async def test_two_dispatchers_claiming_the_same_messages_send_each_once(nf, smtp, clock, db_url, provider):
    feeder = EventFeeder(nf)
    for i in range(3):
        await feeder.feed(customer_registered(f"r{i}", [{"contact_id": f"r{i}k", "email": f"r{i}@example.com", "language": "en"}]))
        await feeder.feed(complaint_filed(f"r{i}", f"r{i}k", f"CP-2026-00010{i}"))
    other = await make_runtime(settings_for(db_url, smtp_port=smtp.port, provider_url=provider.url), clock, seed=False)
    try:
        ids = await nf.dispatcher.due_ids(clock.now())
        assert len(ids) == 3
        handled = await asyncio.gather(nf.dispatcher.process_batch(ids), other.dispatcher.process_batch(list(reversed(ids))))
        assert sum(handled) == 3  # each message was claimed by one of them
        assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(f"<{i}@crm-notifications>" for i in ids)
        assert [m.status for m in await _messages(nf)] == ["sent"] * 3
        assert await other.dispatcher.run_once() == 0
    finally:
        await other.stop()


async def test_opt_out_suppresses_marketing_but_not_complaint_updates(nf_sqlite, smtp):
    nf = nf_sqlite  # policy, not storage: SQLite is enough
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered(
            "c4",
            [{"contact_id": "k4", "name": "Sun", "email": "sun@example.com", "language": "en", "marketing_consent": True}],
            account_manager="am.wu",
        )
    )
    await _set_prefs(nf, "k4", categories={"*": {"opted_in": False}})
    await feeder.feed(
        event(ChurnRiskRaised(customer_id="c4", risk_level="high", signals=["orders falling", "late payments"], raised_at=T0))
    )
    await feeder.feed(complaint_filed("c4", "k4", "CP-2026-000444"))
    await nf.dispatcher.run_once()
    by_rule = {m.rule_name: m for m in await _messages(nf)}
    assert (by_rule["churn-risk-retention"].status, by_rule["churn-risk-retention"].reason) == ("suppressed", "opted out of retention")
    assert by_rule["complaint-filed-ack"].status == "sent"
    assert by_rule["churn-risk-task"].status == "delivered"  # the account manager still gets the task
    assert [m["Subject"] for m in smtp.messages] == ["We received your complaint CP-2026-000444"]
    async with nf.db.sessions() as session:
        [task] = (await session.scalars(select(InboxTask))).all()
    assert task.assignee == "am.wu" and "orders falling" in task.body


async def test_marketing_message_carries_an_unsubscribe_link_that_works(nf_sqlite, smtp, clock):
    nf = nf_sqlite  # policy, not storage: SQLite is enough
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered(
            "c5",
            [{"contact_id": "k5", "name": "Ma", "email": "ma@example.com", "language": "en", "marketing_consent": True}],
            account_manager="am.li",
        )
    )
    await feeder.feed(event(ChurnRiskRaised(customer_id="c5", risk_level="medium", raised_at=T0)))
    await nf.dispatcher.run_once()
    [mail] = smtp.messages
    link = mail["List-Unsubscribe"].strip("<>")
    assert link in mail.get_content() and "/preferences/unsubscribe?token=" in link
    from crm_notifications.delivery.pipeline import check_unsubscribe_token

    assert check_unsubscribe_token(nf.settings.unsubscribe_secret.get_secret_value(), link.split("token=")[1]) == ("k5", "retention")
    assert check_unsubscribe_token(nf.settings.unsubscribe_secret.get_secret_value(), "k5.retention.0000") is None


async def test_tier_up_welcomes_and_tier_down_does_not(nf_sqlite, smtp):
    nf = nf_sqlite  # policy, not storage: SQLite is enough
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered("c6", [{"contact_id": "k6", "name": "Qian", "email": "qian@example.cn"}], account_manager="刘经理")
    )
    await feeder.feed(event(CustomerTierChanged(customer_id="c6", old_tier="key_account", new_tier="ordinary", reason="r", changed_at=T0)))
    await feeder.feed(event(CustomerTierChanged(customer_id="c6", old_tier="ordinary", new_tier="key_account", reason="r", changed_at=T0)))
    await nf.dispatcher.run_once()
    [mail] = smtp.messages
    assert mail["Subject"] == "欢迎成为我们的大客户" and "刘经理" in mail.get_content()


async def test_erased_contact_is_never_contacted_again_and_logs_are_anonymised(nf, smtp):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("c7", [{"contact_id": "k7", "name": "Zhou", "email": "zhou@example.cn"}]))
    await feeder.feed(complaint_filed("c7", "k7", "CP-1"))
    await nf.dispatcher.run_once()
    await feeder.feed(complaint_filed("c7", "k7", "CP-2"))  # queued, not sent yet
    await feeder.feed(event(CustomerErased(customer_id="c7", contact_id="k7", erased_at=T0)))
    await feeder.feed(customer_registered("c7", [{"contact_id": "k7", "name": "Zhou", "email": "zhou@example.cn"}]))  # a late snapshot
    await feeder.feed(complaint_filed("c7", "k7", "CP-3"))
    await nf.dispatcher.run_once()
    assert len(smtp.messages) == 1
    messages = await _messages(nf)
    assert sorted(m.status for m in messages) == ["sent", "suppressed"]  # CP-3 produced nothing at all
    for message in messages:
        assert message.address is None and message.subject == "[erased]"
        assert "zhou" not in (message.subject or "") + (message.body or "") + message.recipient_key
    async with nf.db.sessions() as session:
        variables = (await session.scalars(select(Notification.variables))).all()
        details = (await session.scalars(select(Attempt.detail))).all()
    assert all("zhou" not in str(v).lower() for v in variables)
    assert all("zhou" not in (d or "").lower() for d in details)


async def test_two_dispatchers_never_send_the_same_message_twice(nf, smtp, provider, clock):
    from crm_notifications.delivery.dispatcher import Dispatcher

    feeder = EventFeeder(nf)
    contacts = [{"contact_id": f"kk{i}", "email": f"kk{i}@example.com", "language": "en"} for i in range(12)]
    await feeder.feed(customer_registered("cc", contacts))
    await feeder.feed(
        event(
            PaymentOverdueEvent(
                invoice_id="INV-1", customer_id="cc", amount="5", due_date=dt.date(2026, 2, 1), days_overdue=3, reported_at=T0
            )
        )
    )
    other = Dispatcher(nf.db, nf.channels, nf.settings, clock)
    handled = await asyncio.gather(nf.dispatcher.run_once(), other.run_once())
    assert sum(handled) == 12
    assert sorted(m["To"] for m in smtp.messages) == sorted(c["email"] for c in contacts)
    assert {m.status for m in await _messages(nf)} == {"sent"}


async def test_the_newest_template_version_is_used_and_recorded(nf_sqlite, smtp):
    nf = nf_sqlite  # policy, not storage: SQLite is enough
    from crm_notifications.templates import service as templates

    async with nf.transaction() as session:
        await templates.save_version(
            session,
            key="complaint_ack",
            language="en",
            subject="Ticket {{ complaint_number }} received",
            body="Hello {{ contact_name }}",
            variables=["complaint_number", "contact_name"],
        )
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("cv", [{"contact_id": "kv", "name": "Vera", "email": "v@example.com", "language": "en"}]))
    await feeder.feed(complaint_filed("cv", "kv", "CP-V2"))
    await nf.dispatcher.run_once()
    assert [m["Subject"] for m in smtp.messages] == ["Ticket CP-V2 received"]
    [message] = await _messages(nf)
    assert message.template_version == 2


async def test_erasing_a_whole_customer_covers_reporter_messages_too(nf, smtp):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("ce", [{"contact_id": "ke1", "email": "e1@example.com"}]))
    await feeder.feed(
        event(
            ComplaintFiled(
                complaint_id="qe",
                complaint_number="CP-E",
                customer_id="ce",
                category="delay",
                priority="P3",
                channel="hotline",
                reporter_name="Reporter",
                reporter_phone="+8613800138099",
                reporter_email="reporter@example.com",
                filed_at=T0,
            )
        )
    )
    await feeder.feed(event(CustomerErased(customer_id="ce", erased_at=T0)))
    await feeder.feed(complaint_filed("ce", "ke1", "CP-AFTER"))
    await nf.dispatcher.run_once()
    assert smtp.messages == []
    [message] = await _messages(nf)
    assert (message.status, message.reason, message.address, message.recipient_key) == ("suppressed", "contact erased", None, "erased:ce")
