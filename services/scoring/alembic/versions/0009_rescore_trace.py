"""rescore_queue.traceparent: the trace of the event that marked the customer, which its rescoring continues
(tracing on; NULL, and neither written nor read, while tracing is off)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rescore_queue") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rescore_queue") as batch:
        batch.drop_column("traceparent")
