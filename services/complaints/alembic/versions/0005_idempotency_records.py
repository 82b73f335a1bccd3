"""idempotency_keys -> crm_common's idempotency_records: keys scoped by caller and route, kept 24 h then purged,
on every POST that creates or changes a complaint

The old rows are dropped, not copied: they name no caller, so no scope can be given to them. A client retrying
a complaint filed before the upgrade with the same key files it again (flagged `duplicate_of` by the duplicate check).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime
from crm_common.idempotency import create_idempotency_table, drop_idempotency_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table(op)
    op.drop_table("idempotency_keys")


def downgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("complaint_id", sa.String(length=36), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    drop_idempotency_table(op)
