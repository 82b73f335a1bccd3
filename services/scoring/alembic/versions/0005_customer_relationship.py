"""customers: the profile's declared potential volume and size band (key-account flag)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("potential_volume", sa.Float))
        batch.add_column(sa.Column("size_band", sa.String(20)))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("size_band")
        batch.drop_column("potential_volume")
