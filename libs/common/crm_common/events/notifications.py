"""Events of the notifications context (topic crm.notifications)."""

from __future__ import annotations

import datetime as dt

from crm_common.events.envelope import EventPayload


class _NotificationEvent(EventPayload):
    notification_id: str
    customer_id: str
    contact_id: str | None = None
    channel: str
    template: str | None = None
    rule: str | None = None


class NotificationSent(_NotificationEvent):
    event_type = "NotificationSent"
    event_version = 1

    sent_at: dt.datetime


class NotificationFailed(_NotificationEvent):
    event_type = "NotificationFailed"
    event_version = 1

    error: str
    attempts: int
    failed_at: dt.datetime
