"""Bodies of the delivery log, the in-app inbox and provider receipts."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_common.inputs import Input


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    status: str
    detail: str | None
    at: dt.datetime


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    contact_id: str | None
    rule_name: str | None
    template_key: str
    template_version: int | None
    channel: str
    address: str | None
    language: str
    category: str
    urgency: str
    status: str
    reason: str | None
    subject: str | None
    item_count: int
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    log: list[AttemptOut] = []


class InboxTaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    assignee: str
    customer_id: str
    title: str
    body: str
    created_at: dt.datetime
    done_at: dt.datetime | None


class ReceiptIn(Input):
    status: Literal["delivered", "failed"]
    detail: str | None = Field(default=None, max_length=1000)
