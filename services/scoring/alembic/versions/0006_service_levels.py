"""service levels: the orders' service-level facts (promised pickup, quantities, urgent flag, proof-of-delivery
due and return times), invoice corrections, the per-customer monthly record and the breaches announced

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MAX_QUANTITY = 1_000_000_000  # crm_common.events.bounds.MAX_QUANTITY when this was written

ORDER_COLUMNS = (
    sa.Column("promised_pickup_at", UTCDateTime()),
    sa.Column("quantity_ordered", sa.BigInteger()),
    sa.Column("quantity_shipped", sa.BigInteger()),
    sa.Column("urgent", sa.Integer()),
    sa.Column("pod_due_at", UTCDateTime()),
    sa.Column("pod_return_due_at", UTCDateTime()),
    sa.Column("pod_returned_at", UTCDateTime()),
)
QUANTITY_CHECKS = {
    f"ck_orders_{name}": f"{name} IS NULL OR ({name} >= 0 AND {name} <= {MAX_QUANTITY})"
    for name in ("quantity_ordered", "quantity_shipped")
}


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for column in ORDER_COLUMNS:
            batch.add_column(column)
        for name, condition in QUANTITY_CHECKS.items():
            batch.create_check_constraint(name, sa.text(condition))
    op.create_table(
        "invoice_corrections",
        sa.Column("correction_id", sa.String(100), primary_key=True),
        sa.Column("customer_id", sa.String(100), nullable=False),
        sa.Column("invoice_id", sa.String(100), nullable=False),
        sa.Column("previous_amount", sa.Float()),
        sa.Column("amount", sa.Float()),
        sa.Column("corrected_at", UTCDateTime()),
    )
    op.create_index("ix_invoice_corrections_customer_id", "invoice_corrections", ["customer_id"])
    op.create_table(
        "service_level_months",
        sa.Column("customer_id", sa.String(100), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("orders", sa.Integer(), nullable=False),
        *(
            sa.Column(name, sa.Float())
            for name in (
                "on_time_pickup_pct",
                "on_time_delivery_pct",
                "order_completion_pct",
                "damage_rate_pct",
                "loss_rate_pct",
                "fill_rate_pct",
            )
        ),
        sa.Column("urgent_orders", sa.Integer(), nullable=False),
        sa.Column("urgent_completion_pct", sa.Float()),
        sa.Column("documents_on_time_pct", sa.Float()),
        sa.Column("billing_corrections", sa.Integer(), nullable=False),
        sa.Column("complaints", sa.Integer(), nullable=False),
        sa.Column("complaints_per_100_orders", sa.Float()),
        sa.Column("mean_resolution_hours", sa.Float()),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_service_level_months_month", "service_level_months", ["month", "customer_id"])
    op.create_table(
        "service_level_breaches",
        sa.Column("customer_id", sa.String(100), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("tier", sa.String(20)),
        sa.Column("missed", sa.JSON(), nullable=False),
        sa.Column("announced_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_service_level_breaches_month", "service_level_breaches", ["month"])


def downgrade() -> None:
    op.drop_table("service_level_breaches")
    op.drop_table("service_level_months")
    op.drop_table("invoice_corrections")
    with op.batch_alter_table("orders") as batch:
        for name in QUANTITY_CHECKS:
            batch.drop_constraint(name, type_="check")
        for column in reversed(ORDER_COLUMNS):
            batch.drop_column(column.name)
