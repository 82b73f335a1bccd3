"""nf_messages: partial indexes for the due scan, lapsed leases and the frequency-cap count

(status, next_attempt_at) and (recipient_key, sent_at) over the whole table let the planner, with statistics
older than a segment send, read every queued or every sent message for each dispatcher chunk.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

WAITING = "status IN ('collecting', 'queued', 'deferred')"
LEASED = "status IN ('sending')"
CAPPED = "status IN ('sent', 'delivered')"


def _partial(name: str, columns: list[str], predicate: str) -> None:
    op.create_index(name, "nf_messages", columns, postgresql_where=sa.text(predicate), sqlite_where=sa.text(predicate))


def upgrade() -> None:
    _partial("ix_nf_messages_waiting", ["next_attempt_at", "id"], WAITING)
    _partial("ix_nf_messages_leased", ["lease_until"], LEASED)
    _partial("ix_nf_messages_capped_sent", ["recipient_key", "sent_at"], CAPPED)
    op.drop_index("ix_nf_messages_due", table_name="nf_messages")
    op.drop_index("ix_nf_messages_recipient_sent", table_name="nf_messages")


def downgrade() -> None:
    op.create_index("ix_nf_messages_recipient_sent", "nf_messages", ["recipient_key", "sent_at"])
    op.create_index("ix_nf_messages_due", "nf_messages", ["status", "next_attempt_at"])
    op.drop_index("ix_nf_messages_capped_sent", table_name="nf_messages")
    op.drop_index("ix_nf_messages_leased", table_name="nf_messages")
    op.drop_index("ix_nf_messages_waiting", table_name="nf_messages")
