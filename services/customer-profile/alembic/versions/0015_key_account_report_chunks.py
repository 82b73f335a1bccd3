"""key-account monthly reports commit in chunks: the run's cursor and start, completed_at set by the last chunk

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("key_account_report_runs") as batch:
        batch.add_column(sa.Column("started_at", UTCDateTime))
        batch.add_column(sa.Column("last_customer_id", sa.String(36)))
        batch.alter_column("completed_at", existing_type=UTCDateTime, nullable=True)
    op.execute("UPDATE key_account_report_runs SET started_at = completed_at")  # runs before chunks were whole months


def downgrade() -> None:
    op.execute("DELETE FROM key_account_report_runs WHERE completed_at IS NULL")
    with op.batch_alter_table("key_account_report_runs") as batch:
        batch.alter_column("completed_at", existing_type=UTCDateTime, nullable=False)
        batch.drop_column("last_customer_id")
        batch.drop_column("started_at")
