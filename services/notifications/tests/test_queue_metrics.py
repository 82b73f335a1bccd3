"""The dispatcher's queue gauges: how many messages are due now, and how long the oldest has been due."""

from prometheus_client import REGISTRY

from crm_common.events.complaints import ComplaintFiled
from crm_notifications.preferences import service as preferences
from crm_notifications.preferences.schemas import PreferencesIn
from notifications_support import T0, EventFeeder, customer_registered, event, new_id


def gauge(name: str) -> float:
    return REGISTRY.get_sample_value(name)


async def test_the_queue_gauges_count_due_messages_and_age_the_oldest(nf, provider, clock):
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("q1", [{"contact_id": "qk1", "email": "q1@example.com", "phone": "+8613800138002"}]))
    async with nf.transaction() as session:
        await preferences.update(session, "qk1", PreferencesIn.model_validate({"categories": {"complaint_updates": {"channel": "sms"}}}))
    await provider.stop()  # the SMS provider is down: the message is deferred 20 s after its first try
    await feeder.feed(
        event(
            ComplaintFiled(
                complaint_id=new_id(),
                complaint_number="CP-2026-000777",
                customer_id="q1",
                category="damage",
                priority="P2",
                channel="hotline",
                contact_id="qk1",
                filed_at=T0,
            )
        )
    )
    assert await nf.dispatcher.update_queue_metrics() == 1  # queued, due at once
    assert gauge("crm_notifications_dispatch_queue_due") == 1
    assert await nf.dispatcher.run_once() == 1
    assert await nf.dispatcher.update_queue_metrics() == 0  # deferred until its retry
    assert gauge("crm_notifications_dispatch_queue_oldest_due_age_seconds") == 0
    clock.advance(seconds=20 + 300)
    assert await nf.dispatcher.update_queue_metrics() == 1
    assert gauge("crm_notifications_dispatch_queue_due") == 1
    assert gauge("crm_notifications_dispatch_queue_oldest_due_age_seconds") == 300  # due since its retry time
