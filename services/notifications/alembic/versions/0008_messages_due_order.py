"""nf_messages: priority and occurred_at, so messages due at the same instant go in a fixed order

The due scan orders by (next_attempt_at, priority, occurred_at, id); ix_nf_messages_waiting is rebuilt on those
columns (same partial predicate) so the scan still reads the queue in index order and stops at its batch size.
Existing rows: priority from their urgency, occurred_at = created_at (the event time was not kept before).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

WAITING = "status IN ('collecting', 'queued', 'deferred')"


def _waiting_index(columns: list[str]) -> None:
    op.create_index("ix_nf_messages_waiting", "nf_messages", columns, postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))


def upgrade() -> None:
    op.add_column("nf_messages", sa.Column("priority", sa.SmallInteger(), nullable=True))
    op.add_column("nf_messages", sa.Column("occurred_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE nf_messages SET priority = CASE WHEN urgency = 'critical' THEN 0 ELSE 1 END, occurred_at = created_at")
    op.drop_index("ix_nf_messages_waiting", table_name="nf_messages")
    with op.batch_alter_table("nf_messages") as batch_op:
        batch_op.alter_column("priority", existing_type=sa.SmallInteger(), nullable=False)
        batch_op.alter_column("occurred_at", existing_type=UTCDateTime(), nullable=False)
    _waiting_index(["next_attempt_at", "priority", "occurred_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_nf_messages_waiting", table_name="nf_messages")
    with op.batch_alter_table("nf_messages") as batch_op:
        batch_op.drop_column("occurred_at")
        batch_op.drop_column("priority")
    _waiting_index(["next_attempt_at", "id"])
