"""the customer's service-level agreement (the profile's CustomerRegistered/CustomerUpdated v3): the targets that replace
the tier's defaults when the last closed month is judged

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("service_level_agreement", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("service_level_agreement")
