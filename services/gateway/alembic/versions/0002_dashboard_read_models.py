"""dashboard read models: tier_movements, notification_outcomes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tier_movements",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("old_tier", sa.String(30), nullable=True),
        sa.Column("new_tier", sa.String(30), nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_tier_movements_changed_at", "tier_movements", ["changed_at"])
    op.create_table(
        "notification_outcomes",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_notification_outcomes_at", "notification_outcomes", ["at"])


def downgrade() -> None:
    op.drop_table("notification_outcomes")
    op.drop_table("tier_movements")
