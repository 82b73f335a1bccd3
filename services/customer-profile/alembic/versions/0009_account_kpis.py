"""account manager KPIs: the complaints (crm.complaints) and service-level breaches (crm.scoring) read models

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_complaints",
        sa.Column("complaint_id", sa.String(100), primary_key=True),
        sa.Column("customer_id", sa.String(100), nullable=False),
        sa.Column("filed_at", UTCDateTime),
        sa.Column("survey_score", sa.Integer),
        sa.Column("answered_at", UTCDateTime),
    )
    op.create_index("ix_account_complaints_customer_filed", "account_complaints", ["customer_id", "filed_at"])
    op.create_table(
        "account_service_breaches",
        sa.Column("customer_id", sa.String(100), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("missed", sa.Integer, nullable=False),
        sa.Column("detected_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("account_service_breaches")
    op.drop_index("ix_account_complaints_customer_filed", "account_complaints")
    op.drop_table("account_complaints")
