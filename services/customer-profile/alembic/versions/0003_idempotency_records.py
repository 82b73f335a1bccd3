"""idempotency records: POSTs that create answer a retried Idempotency-Key with their first result

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from alembic import op
from crm_common.idempotency import create_idempotency_table, drop_idempotency_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table(op)


def downgrade() -> None:
    drop_idempotency_table(op)
