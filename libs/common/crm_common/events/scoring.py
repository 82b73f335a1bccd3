"""Events of the scoring context (topic crm.scoring)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from crm_common.events.envelope import EventPayload

Tier = Literal["key_account", "ordinary", "small", "at_risk"]
CreditGrade = Literal["A", "B", "C", "D"]
# what a credit grade calls for (../shared/domain.md); which grade calls for which is data: SCORING_CREDIT_POLICY
CreditAction = Literal[
    "priority_service",  # A: complaints first, fast lane
    "payment_cycle_reminder",  # C: remind the account manager to agree a shorter payment cycle
    "alert_account_manager",  # C: the account manager hears of the grade
    "credit_review_task",  # D: a credit review to do now
    "alert_finance",  # D: finance hears of the grade
]


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


class CustomerScoredV2(CustomerScored):
    """Version 2 adds the churn risk level, so a reader (the account manager's portfolio) needs no second event to
    know it; a version 1 reader reads it unchanged."""

    event_type = "CustomerScored"
    event_version = 2

    churn_risk: Literal["low", "medium", "high"] | None = None


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


class CreditGradeChanged(EventPayload):
    """The credit grade moved (or was first computed). `actions` and `review_every_days` are the credit policy of the
    new grade; `falling` (a worse grade than before) asks to warn the account manager and finance at once."""

    event_type = "CreditGradeChanged"
    event_version = 1

    customer_id: str
    old_grade: CreditGrade | None = None
    new_grade: CreditGrade
    falling: bool
    actions: list[CreditAction] = Field(default_factory=list)
    review_every_days: int = Field(ge=1, le=3660, description="How often the customer's credit is to be reviewed at this grade.")
    reason: str
    changed_at: dt.datetime


class MissedTarget(BaseModel):
    measure: str
    target: float
    actual: float


class ServiceLevelBreached(EventPayload):
    """A closed month of a customer's service levels missed at least one agreed target (issue 20).

    Announced once per customer and month, and again only when the set of missed measures changes."""

    event_type = "ServiceLevelBreached"
    event_version = 1

    customer_id: str
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    tier: Tier | None = None
    missed: list[MissedTarget] = Field(min_length=1)
    summary: str = Field(description="The missed targets in one line, for templates.")
    detected_at: dt.datetime
