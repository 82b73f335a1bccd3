"""fact tables refuse what event validation missed: non-finite, negative or out-of-range amounts and counts, impossible dates

The events' bounds (crm_common.events.bounds) are checked before anything is stored; these constraints are
the storage's own line, fixed numbers because a migration must not change when the code does. Amounts: 0 to
999999999.99 (a margin may be negative); `Infinity` fails the range on both databases, and `NaN` too on
PostgreSQL (SQLite stores a NaN as NULL: unknown). Dates: from 2000-01-01 to before 2100-01-01 (day numbers
10957..47481). Rows already stored that break a rule are deleted first (they came from events the edge
refuses now) and their customers queued for rescoring.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MAX_MONEY = "999999999.99"
FIRST_DAY, END_DAY = 10957, 47482  # 2000-01-01, 2100-01-01 (days since 1970-01-01)


def _money(column: str, signed: bool = False) -> str:
    low = f"-{MAX_MONEY}" if signed else "0"
    return f"{column} IS NULL OR ({column} >= {low} AND {column} <= {MAX_MONEY})"


def _day(column: str) -> str:
    return f"{column} IS NULL OR ({column} >= {FIRST_DAY} AND {column} < {END_DAY})"


def _moment(column: str) -> str:
    # compares as timestamptz on PostgreSQL and as the ISO text SQLite stores ('2026-11-20 09:00:00.000000')
    return f"{column} IS NULL OR ({column} >= '2000-01-01' AND {column} < '2100-01-01')"


def _count(column: str, most: int) -> str:
    return f"{column} IS NULL OR ({column} >= 0 AND {column} <= {most})"


CHECKS = {
    "orders": {
        "ck_orders_amount": _money("amount"),
        "ck_orders_cost": _money("cost"),
        "ck_orders_margin": _money("margin", signed=True),
        "ck_orders_damage_loss": _money("damage_loss"),
        "ck_orders_lost_value": _money("lost_value"),
        "ck_orders_order_day": _day("order_day"),
        "ck_orders_order_date": _moment("order_date"),
        "ck_orders_shipped_at": _moment("shipped_at"),
        "ck_orders_delivered_at": _moment("delivered_at"),
        "ck_orders_delay_minutes": _count("delay_minutes", 366 * 24 * 60),
    },
    "invoices": {
        "ck_invoices_amount": _money("amount"),
        "ck_invoices_due_day": _day("due_day"),
        "ck_invoices_paid_day": _day("paid_day"),
        "ck_invoices_paid_at": _moment("paid_at"),
        "ck_invoices_days_overdue": _count("days_overdue", 10_000),
    },
}


def upgrade() -> None:
    for table, checks in CHECKS.items():
        broken = " OR ".join(f"NOT ({condition})" for condition in checks.values())
        op.execute(
            sa.text(
                f"INSERT INTO rescore_queue (customer_id, seq, marked_at) SELECT DISTINCT customer_id, 1, CURRENT_TIMESTAMP FROM {table} "
                f"WHERE {broken} ON CONFLICT (customer_id) DO NOTHING"
            )
        )
        op.execute(sa.text(f"DELETE FROM {table} WHERE {broken}"))
        with op.batch_alter_table(table) as batch:
            for name, condition in checks.items():
                batch.create_check_constraint(name, sa.text(condition))


def downgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name in checks:
                batch.drop_constraint(name, type_="check")
