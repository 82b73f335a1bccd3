"""service-level judgements: every judged month is kept with its verdict (missed, met, not_measured), so the
satisfaction score counts judged months only (a month never judged no longer counts as met)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_level_breaches") as batch:
        batch.add_column(sa.Column("verdict", sa.String(12), nullable=False, server_default="missed"))


def downgrade() -> None:
    op.execute("DELETE FROM service_level_breaches WHERE verdict <> 'missed'")
    with op.batch_alter_table("service_level_breaches") as batch:
        batch.drop_column("verdict")
