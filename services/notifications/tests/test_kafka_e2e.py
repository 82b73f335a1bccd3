"""The whole service against the real broker: consumer -> pipeline -> dispatcher -> SMTP, outbox -> crm.notifications."""

import asyncio

from sqlalchemy import func, select

from crm_common.bus import KafkaPublisher
from crm_common.events.complaints import ComplaintFiled
from crm_devbroker.testing import read_events, wait_until
from crm_notifications.delivery.models import Message
from crm_notifications.runtime import NotificationsRuntime
from notifications_support import T0, customer_registered, event, settings_for


async def test_complaint_filed_on_kafka_becomes_one_email_and_a_notification_sent_event(sqlite_url, kafka_settings, smtp):
    settings = settings_for(
        sqlite_url,
        smtp_port=smtp.port,
        run_consumers=True,
        run_outbox_relay=True,
        run_dispatcher=True,
        dispatcher_poll_interval_s=0.1,
        outbox_poll_interval_s=0.1,
        kafka=kafka_settings,
        unknown_contact_retry_s=0.5,
    )  # topics are not ordered: the complaint may come before the customer
    runtime = NotificationsRuntime(settings)
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    await runtime.start()
    try:
        await publisher.publish(
            customer_registered("kc1", [{"contact_id": "kk1", "name": "Lin", "email": "lin@example.com", "language": "en"}])
        )
        filed = event(
            ComplaintFiled(
                complaint_id="cmp-k",
                complaint_number="CP-2026-004242",
                customer_id="kc1",
                category="delay",
                priority="P2",
                channel="web",
                contact_id="kk1",
                filed_at=T0,
            )
        )
        await publisher.publish(filed)
        await publisher.publish(filed)  # delivered twice
        await wait_until(lambda: _count(smtp.messages), timeout_s=45)
        [sent] = await read_events(kafka_settings, "crm.notifications", count=1, timeout_s=30)
        assert sent.type == "NotificationSent" and sent.key == "kc1" and sent.payload["rule"] == "complaint-filed-ack"
        await asyncio.sleep(1.0)  # time for a duplicate to show up, if there were one
        assert len(smtp.messages) == 1 and smtp.messages[0]["Subject"] == "We received your complaint CP-2026-004242"
        async with runtime.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Message)) == 1
    finally:
        await publisher.stop()
        await runtime.stop()


async def _count(items):
    return len(items)
