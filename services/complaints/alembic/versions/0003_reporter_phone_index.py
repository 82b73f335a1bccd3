"""complaints.reporter_phone index (lookup?phone= was a Seq Scan on complaints)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_complaints_reporter_phone"), "complaints", ["reporter_phone"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_complaints_reporter_phone"), table_name="complaints")
