"""win-back cases: the generated `detail` as a message key with parameters (issue 19 point 6); older cases have none

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("winback_cases") as batch:
        batch.add_column(sa.Column("detail_key", sa.String(60)))
        batch.add_column(sa.Column("detail_params", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("winback_cases") as batch:
        batch.drop_column("detail_params")
        batch.drop_column("detail_key")
