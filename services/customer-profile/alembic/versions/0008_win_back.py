"""win-back: the orders read model (logistics.orders), the reasons for leaving (seeded) and the win-back cases

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# ../shared/domain.md: churn signals and what a 3PL's customers weigh (cost, on time, intact, staff, complaints)
REASONS = [
    ("price", "Price too high", "价格偏高"),
    ("late_delivery", "Late pickup or delivery", "时效差/到货不及时"),
    ("damage_or_loss", "Damaged or lost goods", "货损货差"),
    ("complaint_handling", "A complaint badly handled", "投诉处理不满意"),
    ("staff_attitude", "Staff attitude and communication", "服务态度与沟通"),
    ("billing", "Billing errors or payment terms", "结算错误/账期"),
    ("service_range", "Service or lane not offered", "服务/线路不能满足"),
    ("competitor_offer", "A competitor's offer", "竞争对手报价"),
    ("business_change", "The customer's business changed (moved, insourced, closed)", "客户业务变化（搬迁、自营物流、停业）"),
    ("other", "Other", "其他"),
]


def upgrade() -> None:
    op.create_table(
        "account_orders",
        sa.Column("order_id", sa.String(100), primary_key=True),
        sa.Column("customer_id", sa.String(100), nullable=False),
        sa.Column("order_date", UTCDateTime, nullable=False),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("cancelled_at", UTCDateTime),
    )
    op.create_index("ix_account_orders_customer_date", "account_orders", ["customer_id", "order_date"])
    reasons = op.create_table(
        "winback_reasons",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("label_en", sa.String(100), nullable=False),
        sa.Column("label_zh", sa.String(100), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.bulk_insert(reasons, [{"code": c, "label_en": en, "label_zh": zh, "position": i} for i, (c, en, zh) in enumerate(REASONS, 1)])
    op.create_table(
        "winback_cases",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("account_manager", sa.String(100)),
        sa.Column("cause", sa.String(20), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("lost_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("reason_text", sa.String(2000)),
        sa.Column("would_return_if", sa.String(2000)),
        sa.Column("surveyed_at", UTCDateTime),
        sa.Column("surveyed_by", sa.String(100)),
        sa.Column("outcome_at", UTCDateTime),
        sa.Column("outcome_note", sa.String(2000)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_winback_cases_customer", "winback_cases", ["customer_id", "status"])
    op.create_index("ix_winback_cases_manager_lost", "winback_cases", ["account_manager", "lost_at"])


def downgrade() -> None:
    op.drop_table("winback_cases")
    op.drop_table("winback_reasons")
    op.drop_index("ix_account_orders_customer_date", "account_orders")
    op.drop_table("account_orders")
