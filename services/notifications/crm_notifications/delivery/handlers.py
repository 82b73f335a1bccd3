"""Events in: the one consumer of this service. Each event first updates the contact directory where its payload
type says so (a map from payload type to handler), then goes through the pipeline, whose rules decide whether
anybody is told."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_common.events.customers import CustomerErased, CustomerLost, CustomerMerged, CustomerSnapshot
from crm_common.events.envelope import EventPayload
from crm_common.events.scoring import CustomerScored, CustomerTierChanged
from crm_notifications.clock import Clock
from crm_notifications.delivery import pipeline
from crm_notifications.directory import service as directory

TOPICS = ("crm.customers", "crm.complaints", "crm.scoring", "logistics.orders", "finance.payments")

DirectoryUpdate = Callable[[AsyncSession, EventPayload, dt.datetime], Awaitable[object]]

# by payload class; a newer version of a payload (a subclass) is handled as its base
DIRECTORY_UPDATES: dict[type[EventPayload], DirectoryUpdate] = {
    CustomerSnapshot: directory.apply_snapshot,
    CustomerLost: directory.apply_lost,
    CustomerMerged: directory.apply_merged,
    CustomerScored: directory.apply_scored,
    CustomerTierChanged: directory.apply_tier,
}


def directory_update(payload: EventPayload) -> DirectoryUpdate | None:
    return next((DIRECTORY_UPDATES[cls] for cls in type(payload).__mro__ if cls in DIRECTORY_UPDATES), None)


class NotificationsHandler:
    name = "notifications"
    topics = TOPICS
    event_types = None  # every type on these topics: rules decide which ones matter

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        survey_base_url: str = "",
        on_enqueued=None,
        unresolved_retry_s: float = 30.0,
        erasure_secret: str = "dev-erasure-secret-change-me",
    ):
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
        update = directory_update(payload)
        if update is not None:
            await update(session, payload, now)
        produced = await pipeline.process_trigger(
            session,
            pipeline.trigger_from_event(event.envelope, payload, event.traceparent),
            now,
            survey_base_url=self.survey_base_url,
            unresolved_retry_s=self.unresolved_retry_s,
            erasure_secret=self.erasure_secret,
        )
        if produced:
            self.on_enqueued()
