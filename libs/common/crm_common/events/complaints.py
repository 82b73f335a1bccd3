"""Events of the complaints context (topic crm.complaints)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import Field

from crm_common.events.envelope import EventPayload

Priority = Literal["P1", "P2", "P3", "P4"]


class _ComplaintEvent(EventPayload):
    complaint_id: str
    complaint_number: str
    customer_id: str


class ComplaintFiled(_ComplaintEvent):
    event_type = "ComplaintFiled"
    event_version = 1

    category: str
    priority: Priority
    channel: str
    team: str | None = None
    contact_id: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    reporter_email: str | None = None
    language: Literal["zh-CN", "en"] = "zh-CN"
    order_ids: list[str] = Field(default_factory=list)
    tracking_numbers: list[str] = Field(default_factory=list)
    filed_at: dt.datetime


class ComplaintAssigned(_ComplaintEvent):
    event_type = "ComplaintAssigned"
    event_version = 1

    team: str
    agent: str | None = None
    reason: str | None = None
    assigned_at: dt.datetime


class ComplaintEscalated(_ComplaintEvent):
    event_type = "ComplaintEscalated"
    event_version = 1

    level: int = Field(ge=1, le=3)
    escalated_to: str
    clock: Literal["first_response", "resolution"]
    reason: Literal["breach", "near_breach", "manual"]
    escalated_at: dt.datetime


class ComplaintResolved(_ComplaintEvent):
    event_type = "ComplaintResolved"
    event_version = 1

    outcome: str
    compensation_amount: Decimal | None = None
    within_sla: bool = True
    survey_url: str | None = None
    contact_id: str | None = None
    resolved_at: dt.datetime


class ComplaintReopened(_ComplaintEvent):
    event_type = "ComplaintReopened"
    event_version = 1

    reason: str | None = None
    reopened_at: dt.datetime


class ComplaintClosed(_ComplaintEvent):
    event_type = "ComplaintClosed"
    event_version = 1

    closed_at: dt.datetime


class SurveyAnswered(EventPayload):
    event_type = "SurveyAnswered"
    event_version = 1

    complaint_id: str
    customer_id: str
    score: int = Field(ge=1, le=5)
    comment: str | None = None
    team: str | None = None
    agent: str | None = None
    answered_at: dt.datetime
