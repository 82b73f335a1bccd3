"""idempotency records: POST /templates, /rules and /segment-sends answer a retried Idempotency-Key with their first result

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op
from crm_common.idempotency import create_idempotency_table, drop_idempotency_table

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table(op)


def downgrade() -> None:
    drop_idempotency_table(op)
