"""account manager's workspace: scoring read model, visit quotas (seeded with the seeds' example), interaction
outcome and next step

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op
from crm_common.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_scores",
        sa.Column("customer_id", sa.String(100), primary_key=True),
        sa.Column("abc_class", sa.String(1)),
        sa.Column("tier", sa.String(20)),
        sa.Column("credit_grade", sa.String(1)),
        sa.Column("churn_risk", sa.String(10)),
        sa.Column("current_value", sa.Float),
        sa.Column("potential_value", sa.Float),
        sa.Column("p_alive", sa.Float),
        sa.Column("scored_at", UTCDateTime),
        sa.Column("credit_review_every_days", sa.Integer),
        sa.Column("credit_review_requested_at", UTCDateTime),
        sa.Column("credit_changed_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    quotas = op.create_table(
        "visit_quotas",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("applies_to", sa.String(20), nullable=False),
        sa.Column("value", sa.String(20), nullable=False),
        sa.Column("visits", sa.Integer, nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.UniqueConstraint("applies_to", "value", name="uq_visit_quotas_target"),
    )
    # ../shared/domain.md: "the top grades at least three visits a quarter"
    op.bulk_insert(
        quotas,
        [
            {"applies_to": "abc_class", "value": "A", "visits": 3, "period": "quarter"},
            {"applies_to": "tier", "value": "key_account", "visits": 3, "period": "quarter"},
        ],
    )
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("outcome", sa.String(20)))
        batch.add_column(sa.Column("next_step", sa.String(500)))
    op.create_index("ix_interactions_customer_kind", "interactions", ["customer_id", "kind", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_interactions_customer_kind", "interactions")
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("next_step")
        batch.drop_column("outcome")
    op.drop_table("visit_quotas")
    op.drop_table("account_scores")
