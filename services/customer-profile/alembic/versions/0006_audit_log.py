"""audit trail: who read or changed a customer's personal data (crm_common.audit), append-only, hash-chained

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from alembic import op
from crm_common.audit import create_audit_tables, drop_audit_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_tables(op)


def downgrade() -> None:
    drop_audit_tables(op)
