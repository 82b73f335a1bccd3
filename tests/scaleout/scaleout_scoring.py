"""The scoring service as a scale-out target: which events it applies and what its state is.

The state fingerprint is computed from scoring's own fact tables (orders, invoices, and the set of
customers), plus per-customer aggregates derived from them (orders, revenue, margin, shipped,
delivered, on time, paid invoices and amount). Columns stamped with the wall clock (first_seen_at)
and the score rows are left out: scores are recomputed against the population at the moment a
batch commits and carry computed_at, so they legitimately differ between two runs of any size.
"""

from __future__ import annotations

from crm_common.events.envelope import EventEnvelope
from crm_common.events.topics import topic_for

EXTRA_ENV = {"SCORING_RUN_SCHEDULER": "false"}

AGGREGATES_SQL = """
SELECT o.customer_id,
       count(*) AS orders,
       round(CAST(sum(o.amount) AS numeric), 2) AS revenue,
       round(CAST(sum(coalesce(o.margin, 0)) AS numeric), 2) AS margin,
       count(o.shipped_at) AS shipped,
       count(o.delivered_at) AS delivered,
       sum(CASE WHEN o.delivered_at IS NOT NULL AND o.promised_at IS NOT NULL AND o.delivered_at <= o.promised_at
                THEN 1 ELSE 0 END) AS on_time,
       (SELECT count(i.paid_at) FROM invoices i WHERE i.customer_id = o.customer_id) AS paid_invoices,
       (SELECT round(CAST(coalesce(sum(i.amount), 0) AS numeric), 2) FROM invoices i WHERE i.customer_id = o.customer_id) AS paid_amount
FROM orders o
GROUP BY o.customer_id
ORDER BY o.customer_id
"""

ORDERS_SQL = """
SELECT order_id, customer_id, order_date, amount, currency, cost, margin, service_type, lane,
       promised_delivery_at, promised_at, shipped_at, delivered_at, cancelled_at,
       delay_minutes, damaged, damage_loss, lost, lost_value
FROM orders ORDER BY order_id
"""

INVOICES_SQL = (
    "SELECT invoice_id, customer_id, amount, currency, due_day, paid_at, paid_day, days_overdue FROM invoices ORDER BY invoice_id"
)
CUSTOMERS_SQL = "SELECT customer_id, is_stub FROM customers ORDER BY customer_id"


def _handler():
    from crm_scoring.scoring.handlers import ScoringHandler

    return ScoringHandler


def accepts(envelope: EventEnvelope) -> bool:
    handler = _handler()
    return topic_for(envelope.type) in handler.topics and (handler.event_types is None or envelope.type in handler.event_types)


async def fingerprint(url: str, rows, digest) -> dict:
    aggregates = await rows(url, AGGREGATES_SQL)
    orders = await rows(url, ORDERS_SQL)
    invoices = await rows(url, INVOICES_SQL)
    customers = await rows(url, CUSTOMERS_SQL)
    return {
        "digest": digest(
            [
                ("aggregates", digest(aggregates)),
                ("orders", digest(orders)),
                ("invoices", digest(invoices)),
                ("customers", digest(customers)),
            ]
        ),
        "customers": len(customers),
        "orders": len(orders),
        "invoices": len(invoices),
        "revenue": str(sum(r[2] for r in aggregates)),
    }
