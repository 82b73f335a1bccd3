"""nf_messages: the open-digest lookup gets a partial index (status = collecting) instead of (digest_group, status)

Left as it was, (digest_group, status) was the last status index the planner could take, on statistics older than
a segment send, for the frequency-cap count: every sent message read per dispatcher chunk.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLLECTING = "status IN ('collecting')"


def upgrade() -> None:
    op.create_index(
        "ix_nf_messages_digest_open",
        "nf_messages",
        ["digest_group"],
        postgresql_where=sa.text(COLLECTING),
        sqlite_where=sa.text(COLLECTING),
    )
    op.drop_index("ix_nf_messages_digest", table_name="nf_messages")


def downgrade() -> None:
    op.create_index("ix_nf_messages_digest", "nf_messages", ["digest_group", "status"])
    op.drop_index("ix_nf_messages_digest_open", table_name="nf_messages")
