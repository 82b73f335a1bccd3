"""facts (orders, invoices, complaints, surveys), customers, aliases, erasures, scores, history, population model, outbox, inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime
from crm_common.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(100)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("customer_id", ID, primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("is_stub", sa.Integer, nullable=False, server_default="1"),
        sa.Column("credit_limit", sa.Float),
        sa.Column("payment_days", sa.Integer),
        sa.Column("share_of_wallet", sa.Float),
        sa.Column("profile_at", UTCDateTime),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "customer_aliases",
        sa.Column("merged_id", ID, primary_key=True),
        sa.Column("survivor_id", ID, nullable=False),
        sa.Column("merged_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_customer_aliases_survivor_id", "customer_aliases", ["survivor_id"])
    op.create_table(
        "erased_customers",
        sa.Column("customer_id", ID, primary_key=True),
        sa.Column("erased_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", ID, primary_key=True),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("order_date", UTCDateTime),
        sa.Column("order_day", sa.Integer),
        sa.Column("amount", sa.Float),
        sa.Column("currency", sa.String(3)),
        sa.Column("cost", sa.Float),
        sa.Column("margin", sa.Float),
        sa.Column("service_type", sa.String(20)),
        sa.Column("lane", sa.String(200)),
        sa.Column("promised_delivery_at", UTCDateTime),
        sa.Column("promised_at", UTCDateTime),
        sa.Column("shipped_at", UTCDateTime),
        sa.Column("delivered_at", UTCDateTime),
        sa.Column("cancelled_at", UTCDateTime),
        sa.Column("delay_minutes", sa.Integer),
        sa.Column("damaged", sa.Integer),
        sa.Column("damage_loss", sa.Float),
        sa.Column("lost", sa.Integer),
        sa.Column("lost_value", sa.Float),
    )
    op.create_index("ix_orders_customer", "orders", ["customer_id", "order_day"])
    op.create_table(
        "invoices",
        sa.Column("invoice_id", ID, primary_key=True),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("amount", sa.Float),
        sa.Column("currency", sa.String(3)),
        sa.Column("due_day", sa.Integer),
        sa.Column("paid_at", UTCDateTime),
        sa.Column("paid_day", sa.Integer),
        sa.Column("days_overdue", sa.Integer),
    )
    op.create_index("ix_invoices_customer_id", "invoices", ["customer_id"])
    op.create_table(
        "complaints",
        sa.Column("complaint_id", ID, primary_key=True),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("priority", sa.String(2)),
        sa.Column("category", sa.String(100)),
        sa.Column("filed_at", UTCDateTime),
        sa.Column("resolved_at", UTCDateTime),
        sa.Column("within_sla", sa.Integer),
        sa.Column("outcome", sa.String(200)),
        sa.Column("compensation", sa.Float),
    )
    op.create_index("ix_complaints_customer_id", "complaints", ["customer_id"])
    op.create_table(
        "surveys",
        sa.Column("complaint_id", ID, primary_key=True),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("answered_at", UTCDateTime),
    )
    op.create_index("ix_surveys_customer_id", "surveys", ["customer_id"])
    op.create_table(
        "customer_scores",
        sa.Column("customer_id", ID, primary_key=True),
        sa.Column("computed_at", UTCDateTime, nullable=False),
        sa.Column("as_of_day", sa.Integer, nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("abc_class", sa.String(1)),
        sa.Column("rfm_r", sa.Integer),
        sa.Column("rfm_f", sa.Integer),
        sa.Column("rfm_m", sa.Integer),
        sa.Column("rfm_segment", sa.String(30)),
        sa.Column("credit_grade", sa.String(1)),
        sa.Column("churn_risk", sa.String(10), nullable=False),
        sa.Column("current_value", sa.Float),
        sa.Column("potential_value", sa.Float),
        sa.Column("loyalty", sa.Float),
        sa.Column("satisfaction", sa.Float),
        sa.Column("p_alive", sa.Float),
        sa.Column("expected_orders_90d", sa.Float),
        sa.Column("clv_12m", sa.Float),
        sa.Column("revenue_12m", sa.Float),
        sa.Column("margin_12m", sa.Float),
        sa.Column("orders_12m", sa.Integer),
        sa.Column("contribution", sa.Float),
        sa.Column("value_loyalty", sa.String(20)),
        sa.Column("credit_loyalty", sa.String(20)),
        sa.Column("value_matrix", sa.String(20)),
        sa.Column("detail", sa.JSON),
        sa.Column("emitted", sa.JSON),
    )
    op.create_index("ix_scores_abc", "customer_scores", ["abc_class", "customer_id"])
    op.create_index("ix_scores_tier", "customer_scores", ["tier", "customer_id"])
    op.create_table(
        "score_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("scored_at", UTCDateTime, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
    )
    op.create_index("ix_score_history_customer", "score_history", ["customer_id", "id"])
    op.create_table(
        "population_model",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("computed_at", UTCDateTime, nullable=False),
        sa.Column("as_of_day", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    for table in (
        "population_model",
        "score_history",
        "customer_scores",
        "surveys",
        "complaints",
        "invoices",
        "orders",
        "erased_customers",
        "customer_aliases",
        "customers",
    ):
        op.drop_table(table)
