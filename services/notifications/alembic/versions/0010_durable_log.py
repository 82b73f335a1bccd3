"""durable log: dead_letters (kept in the database as well as on the .dlq topic), relay_marks (what the broker
acknowledged, to notice a broker that lost it), an index on outbox.created_at (retention purge, replay by time)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from alembic import op
from crm_common.migrations import add_missing_messaging_schema, drop_durable_log_schema

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_missing_messaging_schema(op)


def downgrade() -> None:
    drop_durable_log_schema(op)
