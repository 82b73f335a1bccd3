"""sla_clocks.stretches: the finished stretches of counting, so a changed target finds its breach instant again

Clocks that have counted nothing yet get an empty history; the others keep NULL (history unknown) until
`crm-complaints rebuild-clock-history` rebuilds it from the timeline.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sla_clocks", sa.Column("stretches", sa.JSON(), nullable=True))
    sla_clocks = sa.table("sla_clocks", sa.column("stretches", sa.JSON()), sa.column("consumed_us", sa.BigInteger()))
    op.execute(sla_clocks.update().where(sla_clocks.c.consumed_us == 0).values(stretches=[]))


def downgrade() -> None:
    op.drop_column("sla_clocks", "stretches")
