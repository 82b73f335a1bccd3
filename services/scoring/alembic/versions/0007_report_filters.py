"""report filters: the customer's region, industry and account manager (from the profile's events), and an index of
the orders by service type

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FILTER_COLUMNS = ("region", "industry", "account_manager")


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        for name in FILTER_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(100)))
    op.create_index("ix_orders_service_type", "orders", ["service_type", "customer_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_service_type", table_name="orders")
    with op.batch_alter_table("customers") as batch:
        for name in FILTER_COLUMNS:
            batch.drop_column(name)
