"""rescore_queue: customers whose facts changed since their last scoring (dirty marks of the consumer)

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
        "rescore_queue",
        sa.Column("customer_id", sa.String(100), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False, server_default="1"),
        sa.Column("marked_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rescore_queue")
