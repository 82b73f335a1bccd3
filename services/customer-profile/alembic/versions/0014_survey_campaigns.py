"""satisfaction survey campaigns: a campaign to a segment, one signed single-use link per contact and its answer

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "survey_campaigns",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("segment", sa.JSON, nullable=False),
        sa.Column("factors", sa.JSON, nullable=False),
        sa.Column("valid_days", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "survey_invitations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("answered_at", UTCDateTime),
        sa.Column("score", sa.Integer),
        sa.Column("factors", sa.JSON),
        sa.Column("comment", sa.String(2000)),
        sa.UniqueConstraint("campaign_id", "contact_id", name="uq_survey_invitations_campaign_contact"),
    )
    op.create_index("ix_survey_invitations_answered", "survey_invitations", ["answered_at"])


def downgrade() -> None:
    op.drop_index("ix_survey_invitations_answered", "survey_invitations")
    op.drop_table("survey_invitations")
    op.drop_table("survey_campaigns")
