"""API shapes of the service-level records."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from crm_common.events.bounds import FactMonth


class ServiceLevelMonth(BaseModel):
    month: str = Field(description="YYYY-MM (UTC) of the orders measured.")
    orders: int = Field(description="Orders created in the month and not cancelled.")
    on_time_pickup_pct: float | None = Field(
        description="Picked up by the promised pickup time, of the orders whose promise could be judged."
    )
    on_time_delivery_pct: float | None = Field(description="Delivered by the promised time (到货及时率).")
    order_completion_pct: float | None = Field(description="Delivered, of the month's orders (订单完成率).")
    damage_rate_pct: float | None = Field(description="Orders with a damage report (货物破损).")
    loss_rate_pct: float | None = Field(description="Orders reported lost.")
    fill_rate_pct: float | None = Field(description="Units shipped (up to the units ordered) of units ordered (供应比率).")
    urgent_orders: int
    urgent_completion_pct: float | None = Field(description="Urgent orders delivered by their promise (急单完成率).")
    documents_on_time_pct: float | None = Field(description="Proof-of-delivery documents back by their due time (返单及时率).")
    billing_corrections: int = Field(description="Invoice corrections made in the month (费用结算准确率).")
    complaints: int = Field(description="Complaints filed in the month.")
    complaints_per_100_orders: float | None = Field(description="客户投诉率.")
    mean_resolution_hours: float | None = Field(description="Mean filed-to-resolved time of the month's resolved complaints.")
    computed_at: dt.datetime | None = Field(description="When the record was computed; null for a month without activity.")


class ServiceLevelTrend(BaseModel):
    customer_id: str
    months: list[ServiceLevelMonth] = Field(description="Every month of the window, oldest first.")


class ComputeMonth(BaseModel):
    month: FactMonth = Field(description="YYYY-MM to recompute for the whole base.")


class ComputeResult(BaseModel):
    month: str
    records: int
