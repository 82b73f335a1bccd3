from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_common.events.bounds import HttpUrl, NonNegativeInt32
from crm_common.inputs import Input

IntakeChannel = Literal["web", "mobile", "call_center", "email"]


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


Language = Literal["zh-CN", "en"]


class Attachment(Input):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str | None = Field(default=None, max_length=100)
    size_bytes: NonNegativeInt32 | None = None
    url: HttpUrl | None = None


class Reporter(Input):
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)


class ComplaintCreate(Input):
    """A complaint as filed by a channel. The customer is given by id, or by phone/email."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=32, description="Resolved to a customer through the local directory.")
    email: str | None = Field(default=None, max_length=254)
    order_ids: list[str] = Field(default_factory=list, max_length=50)
    tracking_numbers: list[str] = Field(default_factory=list, max_length=50)
    category: str = Field(min_length=1, max_length=50)
    description: str = Field(min_length=1, max_length=5000)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)
    channel: IntakeChannel
    reporter: Reporter | None = None
    desired_outcome: str | None = Field(default=None, max_length=2000)
    claimed_amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    language: Language | None = None
    region: str | None = Field(default=None, max_length=100)
    service_type: str | None = Field(default=None, max_length=50)


class AssignIn(Input):
    team_id: str | None = None
    agent_id: str | None = None
    reason: str | None = Field(default=None, max_length=1000)


class MessageIn(Input):
    body: str = Field(min_length=1, max_length=10000)


class StatusIn(Input):
    status: str
    reason: str | None = Field(default=None, max_length=1000)


class ResolveIn(Input):
    outcome: str = Field(min_length=1, max_length=2000)
    compensation_amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    message: str | None = Field(default=None, max_length=10000, description="Reply sent to the customer with the resolution.")


class ReasonIn(Input):
    reason: str | None = Field(default=None, max_length=1000)


class MergeIn(Input):
    into: str
    reason: str | None = Field(default=None, max_length=1000)


class SurveyIn(Input):
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)
    token: str | None = None


class ClockOut(BaseModel):
    kind: str
    target_minutes: int
    deadline_at: dt.datetime | None
    stopped_at: dt.datetime | None
    paused: bool
    escalation_level: int
    breached_at: dt.datetime | None


class ComplaintOut(BaseModel):
    id: str
    number: str
    customer_id: str
    category: str
    priority: str
    channel: str
    status: str
    status_text: dict[str, str]
    team_id: str | None
    agent_id: str | None
    description: str = Field(description="In English: the filer's words, or the service's own text rendered from description_key.")
    description_key: str | None = Field(
        None,
        description="Set when the service wrote the description (a complaint opened from a TMS incident, e.g. "
        "description.shipment_delayed) for the reader's own message tables; null for the filer's words: show `description`.",
    )
    description_params: dict | None = Field(
        None, description="The description message's parameters: order id, delay minutes, the TMS's text."
    )
    desired_outcome: str | None
    claimed_amount: Decimal | None
    attachments: list[dict]
    reporter: Reporter
    language: str
    order_ids: list[str]
    tracking_numbers: list[str]
    duplicate_of: str | None
    merged_into: str | None
    filed_at: dt.datetime
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    outcome: str | None
    compensation_amount: Decimal | None
    reopen_count: int
    survey_score: int | None
    clocks: list[ClockOut]


class CustomerComplaintOut(BaseModel):
    """What a customer sees: no team, agent, priority or clocks."""

    id: str
    number: str
    category: str
    status: str
    status_text: str
    filed_at: dt.datetime
    resolved_at: dt.datetime | None
    outcome: str | None
    compensation_amount: Decimal | None
    order_ids: list[str]
    tracking_numbers: list[str]


_BODY = "The text in English: the service's own text rendered from message_key, or someone's own words (a reply, a note)."
_MESSAGE_KEY = (
    "A text of the service as a stable message key (e.g. timeline.assigned) for the reader's own message tables; null for "
    "someone's own words and for entries written before keys existed: show `body`."
)
_MESSAGE_PARAMS = "The message's parameters: codes (statuses, priorities, clock kinds, strategies), ids, a routing rule record, a reason."


class TimelineEntryOut(BaseModel):
    at: dt.datetime
    kind: str
    visibility: str
    actor_id: str | None
    body: str | None = Field(description=_BODY)
    data: dict
    message_key: str | None = Field(None, description=_MESSAGE_KEY)
    message_params: dict | None = Field(None, description=_MESSAGE_PARAMS)


class CustomerTimelineEntryOut(BaseModel):
    at: dt.datetime
    kind: str
    body: str | None = Field(description=_BODY)
    message_key: str | None = Field(None, description=_MESSAGE_KEY)
    message_params: dict | None = Field(None, description=_MESSAGE_PARAMS)
