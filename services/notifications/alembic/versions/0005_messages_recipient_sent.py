"""ix_nf_messages_recipient_sent: the frequency-cap count (sent to a recipient in the last day/week) without a scan

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_nf_messages_recipient_sent", "nf_messages", ["recipient_key", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_nf_messages_recipient_sent", table_name="nf_messages")
