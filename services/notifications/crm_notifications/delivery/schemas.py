"""Bodies of the delivery log, the in-app inbox and provider receipts."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_common.inputs import Input

_KEY = (
    "The text as a stable message key (e.g. delivery.quiet_hours) for the reader's own message tables; null for a "
    "provider's own text and for rows written before keys existed: show the English text."
)
_PARAMS = "The message's parameters (channel, category, counts and limits, an error text)."


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    status: str
    detail: str | None = Field(description="What happened, in English (a provider's own text as it came).")
    detail_key: str | None = Field(None, description=_KEY)
    detail_params: dict | None = Field(None, description=_PARAMS)
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
    reason: str | None = Field(description="Why it is held back or failed, in English (a provider's own text as it came).")
    reason_key: str | None = Field(None, description=_KEY)
    reason_params: dict | None = Field(None, description=_PARAMS)
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
