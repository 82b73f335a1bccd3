"""Events in, messages out: the done-means scenarios on SQLite and PostgreSQL."""

import datetime as dt

from sqlalchemy import func, select

from crm_common.events.complaints import ComplaintFiled
from crm_common.events.logistics import ShipmentDelayed, ShipmentLost
from crm_common.outbox import outbox_table
from crm_notifications.delivery import pipeline
from crm_notifications.delivery.models import Attempt, Message, Notification
from notifications_support import T0, EventFeeder, customer_registered, event, new_id


async def _messages(nf, **where):
    async with nf.db.sessions() as session:
        query = select(Message).order_by(Message.created_at, Message.id)
        for name, value in where.items():
            query = query.where(getattr(Message, name) == value)
        return list((await session.scalars(query)).all())


async def _outbox_types(nf):
    async with nf.db.sessions() as session:
        return list((await session.scalars(select(outbox_table.c.event_type).order_by(outbox_table.c.id))).all())


def complaint_filed(customer_id, contact_id=None, **kw):
    return event(
        ComplaintFiled(
            complaint_id=new_id(),
            complaint_number=kw.pop("number", "CP-2026-000123"),
            customer_id=customer_id,
            category="delay",
            priority="P2",
            channel="web",
            contact_id=contact_id,
            filed_at=T0,
            **kw,
        )
    )


async def test_complaint_filed_sends_one_acknowledgement_in_the_contact_language(nf, smtp):
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered("c1", [{"contact_id": "k-en", "name": "Alice Chen", "email": "alice@example.com", "language": "en"}])
    )
    filed = complaint_filed("c1", "k-en", number="CP-2026-000777")
    await feeder.feed(filed)
    await feeder.feed(filed)  # the broker delivers it again
    async with nf.transaction() as session:  # and even bypassing the inbox, the (event, rule, contact) key holds
        again = await pipeline.process_trigger(session, pipeline.trigger_from_event(filed, filed.parsed()), nf.clock.now())
    assert again == []
    assert await nf.dispatcher.run_once() == 1
    assert await nf.dispatcher.run_once() == 0
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["To"] == "alice@example.com"
    assert mail["Subject"] == "We received your complaint CP-2026-000777"
    assert "Dear Alice Chen" in mail.get_content() and "CP-2026-000777" in mail.get_content()
    [message] = await _messages(nf)
    assert message.status == "sent" and message.language == "en" and message.attempts == 1
    assert await _outbox_types(nf) == ["NotificationSent"]


async def test_complaint_acknowledgement_in_chinese_to_the_reporter(nf_sqlite, smtp):
    nf = nf_sqlite  # policy, not storage: SQLite is enough
    feeder = EventFeeder(nf)
    await feeder.feed(
        complaint_filed(
            "c-unknown", None, number="CP-2026-000888", reporter_name="王先生", reporter_email="wang@example.cn", language="zh-CN"
        )
    )
    await nf.dispatcher.run_once()
    [mail] = smtp.messages
    assert mail["To"] == "wang@example.cn"
    assert mail["Subject"] == "您的投诉已受理（编号 CP-2026-000888）"
    assert "王先生 您好" in mail.get_content()


async def test_quiet_hours_defer_then_send(nf_sqlite, smtp, clock):
    nf = nf_sqlite  # policy, not storage: SQLite is enough
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered(
            "c2",
            [
                {
                    "contact_id": "k2",
                    "name": "Li",
                    "email": "li@example.cn",
                    "language": "zh-CN",
                    "timezone": "Asia/Shanghai",
                    "quiet_hours_start": "22:00",
                    "quiet_hours_end": "08:00",
                }
            ],
        )
    )
    clock.set(dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC))  # 23:30 in Shanghai
    await feeder.feed(complaint_filed("c2", "k2"))
    await nf.dispatcher.run_once()
    [message] = await _messages(nf)
    assert message.status == "deferred" and message.reason == "quiet hours"
    assert message.next_attempt_at == dt.datetime(2026, 3, 3, 0, 0, tzinfo=dt.UTC)  # 08:00 Shanghai
    assert smtp.messages == []
    clock.set(dt.datetime(2026, 3, 2, 23, 59, tzinfo=dt.UTC))
    assert await nf.dispatcher.run_once() == 0
    clock.set(dt.datetime(2026, 3, 3, 0, 0, tzinfo=dt.UTC))
    assert await nf.dispatcher.run_once() == 1
    assert len(smtp.messages) == 1
    [message] = await _messages(nf)
    assert message.status == "sent"
    async with nf.db.sessions() as session:
        statuses = list((await session.scalars(select(Attempt.status).where(Attempt.message_id == message.id).order_by(Attempt.id))).all())
    assert statuses == ["queued", "deferred", "sending", "sent"]


async def test_critical_bypasses_quiet_hours(nf_sqlite, provider, clock):
    nf = nf_sqlite  # policy, not storage: SQLite is enough
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered(
            "c3",
            [
                {
                    "contact_id": "k3",
                    "phone": "+8613800138000",
                    "preferred_channel": "sms",
                    "quiet_hours_start": "22:00",
                    "quiet_hours_end": "08:00",
                }
            ],
        )
    )
    clock.set(dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC))
    await feeder.feed(event(ShipmentLost(order_id="o1", customer_id="c3", tracking_number="SF1", reported_at=T0)))
    await nf.dispatcher.run_once()
    [message] = await _messages(nf)
    assert message.status == "delivered" and message.channel == "sms"
    assert len(provider.received) == 1 and "o1" in provider.received[0]["text"]


async def test_a_burst_of_delays_becomes_one_digest(nf, smtp, clock):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("c4", [{"contact_id": "k4", "name": "Zhang", "email": "zhang@example.cn", "language": "zh-CN"}]))
    for i in range(40):
        await feeder.feed(
            event(
                ShipmentDelayed(
                    order_id=f"ORD-{i:03d}",
                    customer_id="c4",
                    tracking_number=f"SF{i:05d}",
                    delay_minutes=90,
                    new_eta=T0 + dt.timedelta(hours=5),
                    reported_at=T0,
                )
            )
        )
        clock.advance(seconds=5)
    assert await nf.dispatcher.run_once() == 0  # the window (15 min from the first) is still open
    clock.set(T0 + dt.timedelta(seconds=900))
    assert await nf.dispatcher.run_once() == 1
    assert len(smtp.messages) == 1
    [mail] = smtp.messages
    assert mail["Subject"] == "40 票货物运输延误通知"
    body = mail.get_content()
    assert all(f"ORD-{i:03d}" in body for i in range(40))
    [message] = await _messages(nf)
    assert message.item_count == 40 and message.status == "sent"
    async with nf.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 40
    # a delay after the digest left starts a new one
    await feeder.feed(event(ShipmentDelayed(order_id="ORD-late", customer_id="c4", delay_minutes=30, reported_at=T0)))
    assert [m.status for m in await _messages(nf)] == ["sent", "collecting"]


async def test_frequency_cap_suppresses_with_a_logged_reason(nf, smtp, clock):
    nf.settings.cap_per_day = 2
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("c5", [{"contact_id": "k5", "email": "k5@example.com", "language": "en"}]))
    for i in range(3):  # three separate digests (windows apart): service messages, capped at 2 a day
        await feeder.feed(event(ShipmentDelayed(order_id=f"O{i}", customer_id="c5", delay_minutes=60, reported_at=T0)))
        clock.advance(seconds=901)
        await nf.dispatcher.run_once()
    statuses = [(m.status, m.reason) for m in await _messages(nf)]
    assert statuses == [("sent", None), ("sent", None), ("suppressed", "frequency cap: 2 of 2 per day already sent")]
    assert len(smtp.messages) == 2
    # a complaint update is transactional: not capped
    await feeder.feed(complaint_filed("c5", "k5"))
    await nf.dispatcher.run_once()
    assert len(smtp.messages) == 3
    # the next day the cap has room again
    clock.advance(days=1)
    await feeder.feed(event(ShipmentDelayed(order_id="O9", customer_id="c5", delay_minutes=60, reported_at=T0)))
    clock.advance(seconds=901)
    await nf.dispatcher.run_once()
    assert len(smtp.messages) == 4
