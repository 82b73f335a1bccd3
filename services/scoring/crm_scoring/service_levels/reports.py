"""The service-level report over the whole base: the month's customers ranked worst first on one measure, and the
base's monthly trend. Every stored record counts (no sample, no cap); the JSON answer lists the `worst` first
customers, the CSV every customer of the month."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_scoring.scoring.models import customer_scores
from crm_scoring.service_levels.models import MEASURE_COLUMNS, service_level_months
from crm_scoring.service_levels.service import month_window
from crm_scoring.service_levels.targets import FLOORS, MEASURES

RATE_MEASURES = [m for m in MEASURES if m.endswith("_pct") or m in ("complaints_per_100_orders", "mean_resolution_hours")]
CSV_COLUMNS = ["customer_id", "tier", "month", *MEASURE_COLUMNS]


def _ranked(measure: str):
    """Worst first: the lowest share for a floor, the highest value for a ceiling; unmeasured months last."""
    column = service_level_months.c[measure]
    worst = column.asc() if measure in FLOORS else column.desc()
    return [column.is_(None), worst, service_level_months.c.customer_id]


def _records(month: str, measure: str, tier: str | None):
    c = service_level_months.c
    stmt = (
        select(c.customer_id, customer_scores.c.tier, *(c[name] for name in ["month", *MEASURE_COLUMNS]))
        .select_from(service_level_months.outerjoin(customer_scores, customer_scores.c.customer_id == c.customer_id))
        .where(c.month == month)
        .order_by(*_ranked(measure))
    )
    return stmt if tier is None else stmt.where(customer_scores.c.tier == tier)


async def _trend(session: AsyncSession, last: dt.date, months: int, tier: str | None) -> list[dict]:
    """Per month: customers and orders measured, and each rate as the order-weighted mean of the customers' rates
    (a customer with more orders counts more; customers whose rate is unknown do not count)."""
    c = service_level_months.c
    window = month_window(last, months)
    weighted = [
        (func.sum(c[m] * c.orders) / func.nullif(func.sum(case((c[m].is_not(None), c.orders), else_=0)), 0)).label(m) for m in RATE_MEASURES
    ]
    stmt = (
        select(
            c.month,
            func.count().label("customers"),
            func.sum(c.orders).label("orders"),
            func.sum(c.billing_corrections).label("billing_corrections"),
            func.sum(c.complaints).label("complaints"),
            *weighted,
        )
        .where(c.month.in_(window))
        .group_by(c.month)
    )
    if tier is not None:
        stmt = stmt.join(customer_scores, customer_scores.c.customer_id == c.customer_id).where(customer_scores.c.tier == tier)
    rows = {row["month"]: dict(row) for row in (await session.execute(stmt)).mappings()}
    empty = {"customers": 0, "orders": 0, "billing_corrections": 0, "complaints": 0, **{m: None for m in RATE_MEASURES}}
    return [
        {"month": month, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in (rows.get(month) or empty).items() if k != "month"}}
        for month in window
    ]


async def service_level_report(session: AsyncSession, month: str, measure: str, worst: int, tier: str | None, trend_months: int) -> dict:
    rows = [dict(r) for r in (await session.execute(_records(month, measure, tier))).mappings()]
    return {
        "month": month,
        "measure": measure,
        "tier": tier,
        "customers": len(rows),
        "worst": rows[:worst],
        "trend": await _trend(session, dt.datetime.strptime(month, "%Y-%m").date(), trend_months, tier),
    }


async def service_level_csv(session: AsyncSession, month: str, measure: str, tier: str | None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in (await session.execute(_records(month, measure, tier))).mappings():
        writer.writerow(dict(row))
    return out.getvalue()
