"""Events of the scoring context (topic crm.scoring)."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from crm_common.events.envelope import EventPayload

Tier = Literal["key_account", "ordinary", "small", "at_risk"]


class CustomerScored(EventPayload):
    event_type = "CustomerScored"
    event_version = 1

    customer_id: str
    scores: dict[str, float] = Field(default_factory=dict)
    abc_class: Literal["A", "B", "C", "D"] | None = None
    rfm_segment: str | None = None
    credit_grade: Literal["A", "B", "C", "D"] | None = None
    tier: Tier | None = None
    scored_at: dt.datetime


class CustomerTierChanged(EventPayload):
    event_type = "CustomerTierChanged"
    event_version = 1

    customer_id: str
    old_tier: Tier | None = None
    new_tier: Tier
    reason: str
    changed_at: dt.datetime


class ChurnRiskRaised(EventPayload):
    event_type = "ChurnRiskRaised"
    event_version = 1

    customer_id: str
    p_alive: float | None = Field(default=None, ge=0, le=1)
    risk_level: Literal["medium", "high"]
    signals: list[str] = Field(default_factory=list)
    raised_at: dt.datetime
