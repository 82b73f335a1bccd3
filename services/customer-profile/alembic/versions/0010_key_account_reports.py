"""key-account programme: the monthly service reports, their runs, the customers' opt-in; the missed targets of a
service-level breach

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_service_breaches") as batch:
        batch.add_column(sa.Column("missed_targets", sa.JSON))
    op.create_table(
        "key_account_reports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("account_manager", sa.String(100)),
        sa.Column("customer_opted_in", sa.Boolean, nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("generated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("customer_id", "month", name="uq_key_account_reports_customer_month"),
    )
    op.create_index("ix_key_account_reports_month_manager", "key_account_reports", ["month", "account_manager"])
    op.create_table(
        "key_account_report_runs",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("reports", sa.Integer, nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False),
        sa.Column("completed_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "key_account_report_subscriptions",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("customer_opted_in", sa.Boolean, nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
        sa.Column("changed_by", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("key_account_report_subscriptions")
    op.drop_table("key_account_report_runs")
    op.drop_index("ix_key_account_reports_month_manager", "key_account_reports")
    op.drop_table("key_account_reports")
    with op.batch_alter_table("account_service_breaches") as batch:
        batch.drop_column("missed_targets")
