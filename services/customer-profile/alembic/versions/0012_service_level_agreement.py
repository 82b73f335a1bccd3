"""the customer's service-level agreement: the targets agreed where they differ from the tier's defaults (issue 20)

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
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("service_level_agreement", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("service_level_agreement")
