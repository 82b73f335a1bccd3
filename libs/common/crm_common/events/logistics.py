"""Events that TMS/WMS/billing systems publish (topics logistics.orders and finance.payments).

Every field is bounded (crm_common.events.bounds): the gateway refuses at the edge what a consumer would
refuse, so an accepted event is applied."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crm_common.events.bounds import (
    MAX_DAYS_OVERDUE,
    MAX_DELAY_MINUTES,
    Currency,
    FactDate,
    FactDateTime,
    Identifier,
    LongText,
    MediumText,
    Money,
    Quantity,
    ShortText,
    SignedMoney,
)
from crm_common.events.envelope import EventPayload
from crm_common.events.topics import TOPICS

ServiceType = Literal["warehousing", "trunk", "distribution", "express", "cold_chain"]


class _OrderEvent(EventPayload):
    order_id: Identifier
    customer_id: Identifier
    tracking_number: Identifier | None = None


class OrderCreated(_OrderEvent):
    event_type = "OrderCreated"
    event_version = 1

    order_date: FactDateTime
    amount: Money  # revenue of the order
    currency: Currency = "CNY"
    cost: Money | None = None
    margin: SignedMoney | None = None
    service_type: ServiceType | None = None
    lane: ShortText | None = None
    promised_delivery_at: FactDateTime | None = None


class OrderCreatedV2(OrderCreated):
    """OrderCreated with what service levels are measured against: the promised pickup, the quantity ordered
    and the urgent flag. A subclass of v1, so a reader of v1 reads v2 unchanged."""

    event_version = 2

    promised_pickup_at: FactDateTime | None = None
    quantity_ordered: Quantity | None = None
    urgent: bool = False


class OrderShipped(_OrderEvent):
    event_type = "OrderShipped"
    event_version = 1

    shipped_at: FactDateTime  # the actual pickup


class OrderShippedV2(OrderShipped):
    """OrderShipped with the quantity that left (fill rate = shipped / ordered)."""

    event_version = 2

    quantity_shipped: Quantity | None = None


class OrderDelivered(_OrderEvent):
    event_type = "OrderDelivered"
    event_version = 1

    delivered_at: FactDateTime
    promised_at: FactDateTime | None = None


class OrderDeliveredV2(OrderDelivered):
    """OrderDelivered with the deadline of the signed proof-of-delivery document (返单)."""

    event_version = 2

    pod_due_at: FactDateTime | None = None


class ProofOfDeliveryReturned(_OrderEvent):
    """The signed proof-of-delivery document came back to the shipper (返单); on time when by its due time."""

    event_type = "ProofOfDeliveryReturned"
    event_version = 1

    returned_at: FactDateTime
    due_at: FactDateTime | None = None  # overrides OrderDelivered v2's pod_due_at when both are known


class OrderCancelled(_OrderEvent):
    event_type = "OrderCancelled"
    event_version = 1

    cancelled_at: FactDateTime
    reason: MediumText | None = None


class ShipmentDelayed(_OrderEvent):
    event_type = "ShipmentDelayed"
    event_version = 1

    delay_minutes: int = Field(ge=0, le=MAX_DELAY_MINUTES)
    new_eta: FactDateTime | None = None
    reason: MediumText | None = None
    reported_at: FactDateTime


class ShipmentDamaged(_OrderEvent):
    event_type = "ShipmentDamaged"
    event_version = 1

    description: LongText | None = None
    estimated_loss: Money | None = None
    reported_at: FactDateTime


class ShipmentLost(_OrderEvent):
    event_type = "ShipmentLost"
    event_version = 1

    declared_value: Money | None = None
    reported_at: FactDateTime


class _PaymentEvent(EventPayload):
    invoice_id: Identifier
    customer_id: Identifier
    amount: Money
    currency: Currency = "CNY"
    due_date: FactDate


class PaymentReceived(_PaymentEvent):
    event_type = "PaymentReceived"
    event_version = 1

    paid_at: FactDateTime


class PaymentOverdue(_PaymentEvent):
    event_type = "PaymentOverdue"
    event_version = 1

    days_overdue: int = Field(ge=0, le=MAX_DAYS_OVERDUE)
    reported_at: FactDateTime


class InvoiceCorrected(EventPayload):
    """A billed invoice was corrected (a credit note or a re-issue): the measure of billing accuracy."""

    event_type = "InvoiceCorrected"
    event_version = 1

    correction_id: Identifier  # the credit note or re-issue number: one correction, however often it is sent
    invoice_id: Identifier
    customer_id: Identifier
    previous_amount: Money
    amount: Money
    currency: Currency = "CNY"
    reason: MediumText | None = None
    corrected_at: FactDateTime


# What TMS/WMS and billing systems publish: every type of their two topics.
LOGISTICS_EVENT_TYPES = TOPICS["logistics.orders"] + TOPICS["finance.payments"]
