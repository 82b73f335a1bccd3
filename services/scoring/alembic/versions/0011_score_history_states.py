"""score_history: credit_grade and churn_risk as plain columns beside the JSON state, back-filled from it, so the
credit/churn movements group the states without parsing each customer's JSON (issue 20)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("score_history") as batch:
        batch.add_column(sa.Column("credit_grade", sa.String(1)))
        batch.add_column(sa.Column("churn_risk", sa.String(10)))
    # a JSON null (an unrated grade) reads as SQL NULL both ways, as the report's JSON read did
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE score_history SET credit_grade = scores ->> 'credit_grade', churn_risk = scores ->> 'churn_risk'")
    else:
        op.execute(
            "UPDATE score_history SET credit_grade = json_extract(scores, '$.credit_grade'), "
            "churn_risk = json_extract(scores, '$.churn_risk')"
        )


def downgrade() -> None:
    with op.batch_alter_table("score_history") as batch:
        batch.drop_column("churn_risk")
        batch.drop_column("credit_grade")
