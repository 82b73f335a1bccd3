"""directory_customers.account_manager (CSAT by account manager)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("directory_customers", sa.Column("account_manager", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("directory_customers") as batch:
        batch.drop_column("account_manager")
