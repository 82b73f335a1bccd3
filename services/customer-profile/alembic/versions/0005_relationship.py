"""the relationship the account manager declares: share of wallet, potential volume, relationship level

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
        batch.add_column(sa.Column("share_of_wallet", sa.Numeric(5, 4)))
        batch.add_column(sa.Column("potential_volume", sa.Numeric(14, 2)))
        batch.add_column(sa.Column("relationship_level", sa.String(20)))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("relationship_level")
        batch.drop_column("potential_volume")
        batch.drop_column("share_of_wallet")
