"""full customer master: customer fields, tags, contact preferences and consent, addresses, interactions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def customer_columns() -> list[sa.Column]:
    return [
        sa.Column("short_name", sa.String(100)),
        sa.Column("size_band", sa.String(20)),
        sa.Column("registered_address", sa.String(500)),
        sa.Column("tax_id", sa.String(40)),
        sa.Column("account_manager", sa.String(100)),
        sa.Column("source_channel", sa.String(50)),
        sa.Column("first_order_date", sa.Date),
        sa.Column("contract_number", sa.String(64)),
        sa.Column("contract_start", sa.Date),
        sa.Column("contract_end", sa.Date),
        sa.Column("service_types", sa.JSON),
        sa.Column("credit_limit", sa.Numeric(14, 2)),
        sa.Column("payment_days", sa.Integer),
        sa.Column("merged_into", sa.String(36)),
        sa.Column("merged_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime),
    ]


def contact_columns() -> list[sa.Column]:
    return [
        sa.Column("role", sa.String(100)),
        sa.Column("preferred_channel", sa.String(20)),
        sa.Column("language", sa.String(10), nullable=False, server_default="zh-CN"),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="Asia/Shanghai"),
        sa.Column("quiet_hours_start", sa.Time),
        sa.Column("quiet_hours_end", sa.Time),
        sa.Column("marketing_consent", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("marketing_consent_at", UTCDateTime),
        sa.Column("marketing_consent_source", sa.String(100)),
        sa.Column("erased_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    ]


def upgrade() -> None:
    for column in customer_columns():
        op.add_column("customers", column)
    for column in contact_columns():
        op.add_column("contacts", column)

    op.create_index("ix_customers_created_id", "customers", ["created_at", "id"])
    op.create_index("ix_customers_status", "customers", ["status"])
    op.create_index("ix_customers_industry", "customers", ["industry"])
    op.create_index("ix_customers_region", "customers", ["region"])
    op.create_index("ix_customers_account_manager", "customers", ["account_manager"])
    op.create_index(
        "uq_customers_tax_id_live",
        "customers",
        ["tax_id"],
        unique=True,
        postgresql_where=sa.text("merged_into IS NULL"),
        sqlite_where=sa.text("merged_into IS NULL"),
    )
    op.create_index("ix_contacts_customer_id", "contacts", ["customer_id"])

    op.create_table(
        "customer_tags",
        sa.Column("customer_id", sa.String(36), sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(50), primary_key=True),
    )
    op.create_index("ix_customer_tags_tag", "customer_tags", ["tag"])

    op.create_table(
        "addresses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("label", sa.String(100)),
        sa.Column("line1", sa.String(300), nullable=False),
        sa.Column("line2", sa.String(300)),
        sa.Column("district", sa.String(100)),
        sa.Column("city", sa.String(100)),
        sa.Column("province", sa.String(100)),
        sa.Column("postal_code", sa.String(20)),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("latitude", sa.Float),
        sa.Column("longitude", sa.Float),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_addresses_customer_id", "addresses", ["customer_id"])

    op.create_table(
        "interactions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.id")),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("next_follow_up", sa.Date),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_interactions_customer_occurred", "interactions", ["customer_id", "occurred_at", "id"])
    op.create_index("ix_interactions_contact_id", "interactions", ["contact_id"])
    op.create_index("ix_interactions_next_follow_up", "interactions", ["next_follow_up"])


def downgrade() -> None:
    op.drop_table("interactions")
    op.drop_table("addresses")
    op.drop_table("customer_tags")
    op.drop_index("ix_contacts_customer_id", "contacts")
    for name in (
        "uq_customers_tax_id_live",
        "ix_customers_account_manager",
        "ix_customers_region",
        "ix_customers_industry",
        "ix_customers_status",
        "ix_customers_created_id",
    ):
        op.drop_index(name, "customers")
    with op.batch_alter_table("contacts") as batch:
        for column in contact_columns():
            batch.drop_column(column.name)
    with op.batch_alter_table("customers") as batch:
        for column in customer_columns():
            batch.drop_column(column.name)
