from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel


class ScoreSummary(BaseModel):
    customer_id: str
    tier: str
    abc_class: str | None = None
    rfm_r: int | None = None
    rfm_f: int | None = None
    rfm_m: int | None = None
    rfm_segment: str | None = None
    credit_grade: str | None = None
    churn_risk: str
    current_value: float | None = None
    potential_value: float | None = None
    loyalty: float | None = None
    satisfaction: float | None = None
    p_alive: float | None = None
    expected_orders_90d: float | None = None
    clv_12m: float | None = None
    revenue_12m: float | None = None
    margin_12m: float | None = None
    orders_12m: int | None = None
    value_loyalty: str | None = None
    credit_loyalty: str | None = None
    value_matrix: str | None = None
    computed_at: dt.datetime


class HistoryEntry(BaseModel):
    scored_at: dt.datetime
    scores: dict[str, Any]


class ScoreDetail(ScoreSummary):
    explanations: dict[str, Any]
    history: list[HistoryEntry]


class ScorePage(BaseModel):
    items: list[ScoreSummary]
    next_cursor: str | None = None


class RecomputeResult(BaseModel):
    customers: int
    events: dict[str, int]
    model: dict[str, Any]
    as_of: dt.date


RiskLevel = Literal["low", "medium", "high"]
