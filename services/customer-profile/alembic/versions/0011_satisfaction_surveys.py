"""key-account programme: the quarterly satisfaction surveys

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "satisfaction_surveys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("quarter", sa.String(7), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("factors", sa.JSON, nullable=False),
        sa.Column("comment", sa.String(2000)),
        sa.Column("account_manager", sa.String(100)),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("answered_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("customer_id", "quarter", name="uq_satisfaction_surveys_customer_quarter"),
    )
    op.create_index("ix_satisfaction_surveys_answered", "satisfaction_surveys", ["answered_at"])


def downgrade() -> None:
    op.drop_index("ix_satisfaction_surveys_answered", "satisfaction_surveys")
    op.drop_table("satisfaction_surveys")
