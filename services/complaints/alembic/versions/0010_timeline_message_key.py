"""timeline_entries.message_key, message_params: the service's own texts as a message key with parameters

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
    # nullable: rows written before keep their English body, which readers show when there is no key
    with op.batch_alter_table("timeline_entries") as batch:
        batch.add_column(sa.Column("message_key", sa.String(60), nullable=True))
        batch.add_column(sa.Column("message_params", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("timeline_entries") as batch:
        batch.drop_column("message_params")
        batch.drop_column("message_key")
