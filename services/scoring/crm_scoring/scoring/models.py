"""Tables of the scoring domain: facts merged from events, per-customer scores, the population model.

Fact rows are keyed by the business id carried in every event (order_id, invoice_id, complaint_id),
and each event fills only its own columns with a commutative rule, so arrival order never matters.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, String, Table

from crm_common.db import UTCDateTime
from crm_scoring.db import metadata

ID = String(100)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("name", String(200)),
    Column("is_stub", Integer, nullable=False, server_default="1"),
    Column("credit_limit", Float),
    Column("payment_days", Integer),
    Column("share_of_wallet", Float),
    Column("potential_volume", Float),  # the customer's whole yearly logistics spend, declared on the profile
    Column("size_band", String(20)),  # "key_account" is the profile's manual key-account flag
    Column("region", String(100)),  # region, industry and account manager: the management reports' filters
    Column("industry", String(100)),
    Column("account_manager", String(100)),
    Column("service_level_agreement", JSON),  # {measure: target} agreed on the profile in place of the tier's defaults
    Column("profile_at", UTCDateTime),
    Column("first_seen_at", UTCDateTime, nullable=False),
)

customer_aliases = Table(
    "customer_aliases",
    metadata,
    Column("merged_id", ID, primary_key=True),
    Column("survivor_id", ID, nullable=False, index=True),
    Column("merged_at", UTCDateTime, nullable=False),
)

erased_customers = Table(
    "erased_customers",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("erased_at", UTCDateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", ID, primary_key=True),
    Column("customer_id", ID, nullable=False),
    Column("order_date", UTCDateTime),
    Column("order_day", Integer),  # days since 1970-01-01 (UTC), for fast population scans
    Column("amount", Float),
    Column("currency", String(3)),
    Column("cost", Float),
    Column("margin", Float),
    Column("service_type", String(20)),
    Column("lane", String(200)),
    Column("promised_delivery_at", UTCDateTime),  # from OrderCreated
    Column("promised_at", UTCDateTime),  # from OrderDelivered (wins when both are known)
    Column("shipped_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("cancelled_at", UTCDateTime),
    Column("delay_minutes", Integer),
    Column("damaged", Integer),
    Column("damage_loss", Float),
    Column("lost", Integer),
    Column("lost_value", Float),
    # service-level facts (OrderCreated/OrderShipped/OrderDelivered v2, ProofOfDeliveryReturned)
    Column("promised_pickup_at", UTCDateTime),
    Column("quantity_ordered", BigInteger),
    Column("quantity_shipped", BigInteger),
    Column("urgent", Integer),
    Column("pod_due_at", UTCDateTime),  # from OrderDelivered v2
    Column("pod_return_due_at", UTCDateTime),  # from ProofOfDeliveryReturned (wins when both are known)
    Column("pod_returned_at", UTCDateTime),
)
Index("ix_orders_customer", orders.c.customer_id, orders.c.order_day)
Index("ix_orders_service_type", orders.c.service_type, orders.c.customer_id)  # the reports' service-type filter (migration 0007)

invoices = Table(
    "invoices",
    metadata,
    Column("invoice_id", ID, primary_key=True),
    Column("customer_id", ID, nullable=False, index=True),
    Column("amount", Float),
    Column("currency", String(3)),
    Column("due_day", Integer),
    Column("paid_at", UTCDateTime),
    Column("paid_day", Integer),
    Column("days_overdue", Integer),
)

invoice_corrections = Table(
    "invoice_corrections",
    metadata,
    Column("correction_id", ID, primary_key=True),
    Column("customer_id", ID, nullable=False, index=True),
    Column("invoice_id", ID, nullable=False),
    Column("previous_amount", Float),
    Column("amount", Float),
    Column("corrected_at", UTCDateTime),
)

complaints = Table(
    "complaints",
    metadata,
    Column("complaint_id", ID, primary_key=True),
    Column("customer_id", ID, nullable=False, index=True),
    Column("priority", String(2)),
    Column("category", String(100)),
    Column("filed_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("within_sla", Integer),
    Column("outcome", String(200)),
    Column("compensation", Float),
)

surveys = Table(
    "surveys",
    metadata,
    Column("complaint_id", ID, primary_key=True),
    Column("customer_id", ID, nullable=False, index=True),
    Column("score", Integer, nullable=False),
    Column("answered_at", UTCDateTime),
)

FACT_TABLES = (orders, invoices, invoice_corrections, complaints, surveys)

customer_scores = Table(
    "customer_scores",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("as_of_day", Integer, nullable=False),
    Column("tier", String(20), nullable=False),
    Column("abc_class", String(1)),
    Column("rfm_r", Integer),
    Column("rfm_f", Integer),
    Column("rfm_m", Integer),
    Column("rfm_segment", String(30)),
    Column("credit_grade", String(1)),
    Column("churn_risk", String(10), nullable=False),
    Column("current_value", Float),
    Column("potential_value", Float),
    Column("loyalty", Float),
    Column("satisfaction", Float),
    Column("p_alive", Float),
    Column("expected_orders_90d", Float),
    Column("clv_12m", Float),
    Column("revenue_12m", Float),
    Column("margin_12m", Float),
    Column("orders_12m", Integer),
    Column("contribution", Float),
    Column("value_loyalty", String(20)),
    Column("credit_loyalty", String(20)),
    Column("value_matrix", String(20)),
    Column("detail", JSON),
    Column("emitted", JSON),  # the state last announced with CustomerScored (the step is measured from it)
)
Index("ix_scores_abc", customer_scores.c.abc_class, customer_scores.c.customer_id)
Index("ix_scores_tier", customer_scores.c.tier, customer_scores.c.customer_id)

score_history = Table(
    "score_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("customer_id", ID, nullable=False),
    Column("scored_at", UTCDateTime, nullable=False),
    Column("scores", JSON, nullable=False),
    # the two states the credit/churn movements group by, copied out of `scores` so the report reads no JSON
    Column("credit_grade", String(1)),
    Column("churn_risk", String(10)),
)
Index("ix_score_history_customer", score_history.c.customer_id, score_history.c.id)

population_model = Table(
    "population_model",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("as_of_day", Integer, nullable=False),
    Column("params", JSON, nullable=False),
)

# customers whose facts changed since they were last scored: the consumer marks (seq + 1 per batch),
# the rescoring task scores them and deletes the mark only if its seq is still the one it read
rescore_queue = Table(
    "rescore_queue",
    metadata,
    Column("customer_id", ID, primary_key=True),
    Column("seq", Integer, nullable=False, server_default="1"),
    Column("marked_at", UTCDateTime, nullable=False),
    Column("traceparent", String(200), nullable=True),  # tracing on: the marking event's trace, which the rescoring continues
)

SCORE_COLUMNS = [c.name for c in customer_scores.columns if c.name not in ("customer_id", "emitted")]
