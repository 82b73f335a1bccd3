"""notifications: directory, templates, rules, preferences, messages, notifications, attempts, inbox, segment sends; outbox and inbox

Revision ID: 0001
Revises:
Create Date: 2026-11-26 09:30:46.467519
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime
from crm_common.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nf_contact_addresses",
        sa.Column("contact_id", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=1000), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", "channel", name="pk_nf_contact_addresses"),
    )
    op.create_table(
        "nf_contacts",
        sa.Column("contact_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=100), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("preferred_channel", sa.String(length=20), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("quiet_hours_start", sa.String(length=8), nullable=True),
        sa.Column("quiet_hours_end", sa.String(length=8), nullable=True),
        sa.Column("marketing_consent", sa.Boolean(), nullable=False),
        sa.Column("erased", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id"),
    )
    with op.batch_alter_table("nf_contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nf_contacts_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "nf_customers",
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("status_since", UTCDateTime(), nullable=True),
        sa.Column("account_manager", sa.String(length=200), nullable=True),
        sa.Column("contract_end", sa.Date(), nullable=True),
        sa.Column("tier", sa.String(length=20), nullable=True),
        sa.Column("abc_class", sa.String(length=1), nullable=True),
        sa.Column("erased", sa.Boolean(), nullable=False),
        sa.Column("merged_into", sa.String(length=100), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    with op.batch_alter_table("nf_customers", schema=None) as batch_op:
        batch_op.create_index("ix_nf_customers_abc", ["abc_class"], unique=False)
        batch_op.create_index("ix_nf_customers_tier", ["tier"], unique=False)

    op.create_table(
        "nf_inbox_tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("nf_inbox_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nf_inbox_tasks_assignee"), ["assignee"], unique=False)

    op.create_table(
        "nf_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("contact_id", sa.String(length=100), nullable=True),
        sa.Column("recipient_key", sa.String(length=300), nullable=False),
        sa.Column("rule_id", sa.String(length=36), nullable=True),
        sa.Column("rule_name", sa.String(length=100), nullable=True),
        sa.Column("template_key", sa.String(length=100), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=1000), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("urgency", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("digest_group", sa.String(length=500), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("nf_messages", schema=None) as batch_op:
        batch_op.create_index("ix_nf_messages_contact_sent", ["contact_id", "sent_at"], unique=False)
        batch_op.create_index("ix_nf_messages_customer", ["customer_id", "created_at"], unique=False)
        batch_op.create_index("ix_nf_messages_digest", ["digest_group", "status"], unique=False)
        batch_op.create_index("ix_nf_messages_due", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "nf_notifications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("rule_id", sa.String(length=36), nullable=False),
        sa.Column("recipient_key", sa.String(length=300), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("contact_id", sa.String(length=100), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "rule_id", "recipient_key", name="uq_nf_notifications_triple"),
    )
    with op.batch_alter_table("nf_notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nf_notifications_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nf_notifications_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nf_notifications_message_id"), ["message_id"], unique=False)

    op.create_table(
        "nf_preferences",
        sa.Column("contact_id", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("source", sa.String(length=50), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", "category", name="pk_nf_preferences"),
    )
    op.create_table(
        "nf_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("template_key", sa.String(length=100), nullable=False),
        sa.Column("audience", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("urgency", sa.String(length=20), nullable=False),
        sa.Column("digest_window_s", sa.Integer(), nullable=True),
        sa.Column("digest_key", sa.String(length=100), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("nf_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nf_rules_event_type"), ["event_type"], unique=False)

    op.create_table(
        "nf_segment_sends",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("template_key", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "nf_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", "language", "version", name="uq_nf_templates_version"),
    )
    with op.batch_alter_table("nf_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nf_templates_key"), ["key"], unique=False)

    op.create_table(
        "nf_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["nf_messages.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("nf_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nf_attempts_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nf_attempts_message_id"), ["message_id"], unique=False)

    create_messaging_tables(op)


def downgrade() -> None:
    drop_messaging_tables(op)
    with op.batch_alter_table("nf_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nf_attempts_message_id"))
        batch_op.drop_index(batch_op.f("ix_nf_attempts_customer_id"))

    op.drop_table("nf_attempts")
    with op.batch_alter_table("nf_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nf_templates_key"))

    op.drop_table("nf_templates")
    op.drop_table("nf_segment_sends")
    with op.batch_alter_table("nf_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nf_rules_event_type"))

    op.drop_table("nf_rules")
    op.drop_table("nf_preferences")
    with op.batch_alter_table("nf_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nf_notifications_message_id"))
        batch_op.drop_index(batch_op.f("ix_nf_notifications_customer_id"))
        batch_op.drop_index(batch_op.f("ix_nf_notifications_contact_id"))

    op.drop_table("nf_notifications")
    with op.batch_alter_table("nf_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_nf_messages_due")
        batch_op.drop_index("ix_nf_messages_digest")
        batch_op.drop_index("ix_nf_messages_customer")
        batch_op.drop_index("ix_nf_messages_contact_sent")

    op.drop_table("nf_messages")
    with op.batch_alter_table("nf_inbox_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nf_inbox_tasks_assignee"))

    op.drop_table("nf_inbox_tasks")
    with op.batch_alter_table("nf_customers", schema=None) as batch_op:
        batch_op.drop_index("ix_nf_customers_tier")
        batch_op.drop_index("ix_nf_customers_abc")

    op.drop_table("nf_customers")
    with op.batch_alter_table("nf_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nf_contacts_customer_id"))

    op.drop_table("nf_contacts")
    op.drop_table("nf_contact_addresses")
