"""Events that TMS/WMS/billing systems publish (topics logistics.orders and finance.payments)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import Field

from crm_common.events.envelope import EventPayload
from crm_common.events.topics import TOPICS

ServiceType = Literal["warehousing", "trunk", "distribution", "express", "cold_chain"]
Money = Decimal


class _OrderEvent(EventPayload):
    order_id: str = Field(min_length=1, max_length=100)
    customer_id: str = Field(min_length=1, max_length=100)
    tracking_number: str | None = Field(default=None, max_length=100)


class OrderCreated(_OrderEvent):
    event_type = "OrderCreated"
    event_version = 1

    order_date: dt.datetime
    amount: Money = Field(ge=0, description="Revenue of the order.")
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    cost: Money | None = Field(default=None, ge=0)
    margin: Money | None = None
    service_type: ServiceType | None = None
    lane: str | None = Field(default=None, max_length=200)
    promised_delivery_at: dt.datetime | None = None


class OrderShipped(_OrderEvent):
    event_type = "OrderShipped"
    event_version = 1

    shipped_at: dt.datetime


class OrderDelivered(_OrderEvent):
    event_type = "OrderDelivered"
    event_version = 1

    delivered_at: dt.datetime
    promised_at: dt.datetime | None = None


class OrderCancelled(_OrderEvent):
    event_type = "OrderCancelled"
    event_version = 1

    cancelled_at: dt.datetime
    reason: str | None = Field(default=None, max_length=1000)


class ShipmentDelayed(_OrderEvent):
    event_type = "ShipmentDelayed"
    event_version = 1

    delay_minutes: int = Field(ge=0)
    new_eta: dt.datetime | None = None
    reason: str | None = Field(default=None, max_length=1000)
    reported_at: dt.datetime


class ShipmentDamaged(_OrderEvent):
    event_type = "ShipmentDamaged"
    event_version = 1

    description: str | None = Field(default=None, max_length=2000)
    estimated_loss: Money | None = Field(default=None, ge=0)
    reported_at: dt.datetime


class ShipmentLost(_OrderEvent):
    event_type = "ShipmentLost"
    event_version = 1

    declared_value: Money | None = Field(default=None, ge=0)
    reported_at: dt.datetime


class _PaymentEvent(EventPayload):
    invoice_id: str = Field(min_length=1, max_length=100)
    customer_id: str = Field(min_length=1, max_length=100)
    amount: Money = Field(ge=0)
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    due_date: dt.date


class PaymentReceived(_PaymentEvent):
    event_type = "PaymentReceived"
    event_version = 1

    paid_at: dt.datetime


class PaymentOverdue(_PaymentEvent):
    event_type = "PaymentOverdue"
    event_version = 1

    days_overdue: int = Field(ge=0)
    reported_at: dt.datetime


# What TMS/WMS and billing systems publish: every type of their two topics.
LOGISTICS_EVENT_TYPES = TOPICS["logistics.orders"] + TOPICS["finance.payments"]
