"""win-back: the survey call goes to a neutral agent (the pool and the case's call_agent); offers sent from a case

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "winback_call_agents",
        sa.Column("agent_id", sa.String(100), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("winback_cases") as batch:
        batch.add_column(sa.Column("call_agent", sa.String(100)))
        batch.add_column(sa.Column("call_assigned_at", UTCDateTime))
    op.create_index("ix_winback_cases_call_agent", "winback_cases", ["call_agent", "status"])
    op.create_table(
        "winback_offers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("discount_percent", sa.Integer),
        sa.Column("valid_until", sa.Date, nullable=False),
        sa.Column("made_by", sa.String(100), nullable=False),
        sa.Column("made_at", UTCDateTime, nullable=False),
        sa.Column("response", sa.String(20)),
        sa.Column("response_note", sa.String(2000)),
        sa.Column("responded_at", UTCDateTime),
    )
    op.create_index("ix_winback_offers_case", "winback_offers", ["case_id", "made_at"])


def downgrade() -> None:
    op.drop_index("ix_winback_offers_case", "winback_offers")
    op.drop_table("winback_offers")
    op.drop_index("ix_winback_cases_call_agent", "winback_cases")
    with op.batch_alter_table("winback_cases") as batch:
        batch.drop_column("call_assigned_at")
        batch.drop_column("call_agent")
    op.drop_table("winback_call_agents")
