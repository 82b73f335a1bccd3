"""nf_messages.traceparent: the trace of the event (or request) that queued the message, which the dispatcher's and the
channel's spans continue (tracing on; NULL while tracing is off)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nf_messages") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nf_messages") as batch:
        batch.drop_column("traceparent")
