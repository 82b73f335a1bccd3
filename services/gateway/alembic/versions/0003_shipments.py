"""shipments read model for the customer 360

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shipments",
        sa.Column("order_id", sa.String(100), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("tracking_number", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("service_type", sa.String(30), nullable=True),
        sa.Column("lane", sa.String(200), nullable=True),
        sa.Column("amount", sa.Numeric(14, 2), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("ordered_at", UTCDateTime, nullable=True),
        sa.Column("shipped_at", UTCDateTime, nullable=True),
        sa.Column("promised_at", UTCDateTime, nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.Column("on_time", sa.Boolean, nullable=True),
        sa.Column("delay_minutes", sa.Integer, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_shipments_customer", "shipments", ["customer_id", "updated_at"])


def downgrade() -> None:
    op.drop_table("shipments")
