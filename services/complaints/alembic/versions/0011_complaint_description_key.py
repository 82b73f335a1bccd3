"""complaints.description_key, description_params: descriptions the service writes (TMS incidents) as a message key

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
    # nullable: the filer's own words and complaints opened before keys have none; readers show `description`
    with op.batch_alter_table("complaints") as batch:
        batch.add_column(sa.Column("description_key", sa.String(60), nullable=True))
        batch.add_column(sa.Column("description_params", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("description_params")
        batch.drop_column("description_key")
