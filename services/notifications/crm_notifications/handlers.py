"""The event consumer: keeps the directory current and turns events into notifications."""
from __future__ import annotations

from crm_common.consumer import Event
from crm_common.events.customers import CustomerErased, CustomerLost, CustomerMerged, CustomerSnapshot
from crm_common.events.scoring import CustomerScored, CustomerTierChanged
from crm_notifications.clock import Clock
from crm_notifications.delivery import pipeline
from crm_notifications.directory import service as directory

TOPICS = ("crm.customers", "crm.complaints", "crm.scoring", "logistics.orders", "finance.payments")


class NotificationsHandler:
    name = "notifications"
    topics = TOPICS
    event_types = None  # every type on these topics: rules decide which ones matter

    def __init__(self, clock: Clock | None = None, *, survey_base_url: str = "", on_enqueued=None, unresolved_retry_s: float = 30.0,
                 erasure_secret: str = "dev-erasure-secret-change-me"):
        self.clock = clock or Clock()
        self.survey_base_url = survey_base_url
        self.unresolved_retry_s = unresolved_retry_s
        self.erasure_secret = erasure_secret
        self.on_enqueued = on_enqueued or (lambda: None)

    async def handle(self, session, event: Event) -> None:
        now = self.clock.now()
        payload = event.payload
        if isinstance(payload, CustomerErased):
            await directory.apply_erased(session, payload, now, secret=self.erasure_secret)
            return  # nobody is told about an erasure
        if isinstance(payload, CustomerSnapshot):
            await directory.apply_snapshot(session, payload, now)
        elif isinstance(payload, CustomerLost):
            await directory.apply_lost(session, payload, now)
        elif isinstance(payload, CustomerMerged):
            await directory.apply_merged(session, payload, now)
        elif isinstance(payload, CustomerScored):
            await directory.apply_scored(session, payload, now)
        elif isinstance(payload, CustomerTierChanged):
            await directory.apply_tier(session, payload, now)
        produced = await pipeline.process_trigger(session, pipeline.trigger_from_event(event.envelope, payload), now,
                                                  survey_base_url=self.survey_base_url, unresolved_retry_s=self.unresolved_retry_s,
                                                  erasure_secret=self.erasure_secret)
        if produced:
            self.on_enqueued()
