"""nf_messages.reason_key/reason_params, nf_attempts.detail_key/detail_params: reasons as message keys with parameters

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: rows written before keep their English text, which readers show when there is no key
    with op.batch_alter_table("nf_messages") as batch:
        batch.add_column(sa.Column("reason_key", sa.String(60), nullable=True))
        batch.add_column(sa.Column("reason_params", sa.JSON(none_as_null=True), nullable=True))
    with op.batch_alter_table("nf_attempts") as batch:
        batch.add_column(sa.Column("detail_key", sa.String(60), nullable=True))
        batch.add_column(sa.Column("detail_params", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nf_attempts") as batch:
        batch.drop_column("detail_params")
        batch.drop_column("detail_key")
    with op.batch_alter_table("nf_messages") as batch:
        batch.drop_column("reason_params")
        batch.drop_column("reason_key")
