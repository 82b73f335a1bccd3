"""The service-level report over the whole base: the month's customers ranked worst first on one measure, and the
base's monthly trend; filtered like the management reports (`reports.filters`: region, industry, account manager,
service type, tier; a period gives the trend's months). Every stored record of the filtered customers counts (no
sample, no cap); the JSON answer lists the `worst` first customers, the CSV every filtered customer of the month."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_scoring.reports.filters import ReportFilters, customer_conditions
from crm_scoring.scoring.models import customer_scores
from crm_scoring.service_levels.models import MEASURE_COLUMNS, service_level_months
from crm_scoring.service_levels.service import month_window
from crm_scoring.service_levels.targets import FLOORS, MEASURES

MAX_TREND_MONTHS = 60


class TrendTooLong(ValueError):
    """A period longer than the trend shows."""


RATE_MEASURES = [m for m in MEASURES if m.endswith("_pct") or m in ("complaints_per_100_orders", "mean_resolution_hours")]
CSV_COLUMNS = ["customer_id", "tier", "month", *MEASURE_COLUMNS]


def _ranked(measure: str):
    """Worst first: the lowest share for a floor, the highest value for a ceiling; unmeasured months last."""
    column = service_level_months.c[measure]
    worst = column.asc() if measure in FLOORS else column.desc()
    return [column.is_(None), worst, service_level_months.c.customer_id]


def _records(month: str, measure: str, f: ReportFilters):
    c = service_level_months.c
    return (
        select(c.customer_id, customer_scores.c.tier, *(c[name] for name in ["month", *MEASURE_COLUMNS]))
        .select_from(service_level_months.outerjoin(customer_scores, customer_scores.c.customer_id == c.customer_id))
        .where(c.month == month, *customer_conditions(c.customer_id, f, tier=customer_scores.c.tier))
        .order_by(*_ranked(measure))
    )


def trend_window(month: str, trend_months: int, f: ReportFilters) -> list[str]:
    """The trend's months: those of the period when one is given, else `trend_months` ending with `month`."""
    if f.period_start is None or f.period_end is None:
        return month_window(dt.datetime.strptime(month, "%Y-%m").date(), trend_months)
    first, last = f.period_start.replace(day=1), f.period_end.replace(day=1)
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    if count > MAX_TREND_MONTHS:
        raise TrendTooLong(f"the period spans {count} months; the trend shows at most {MAX_TREND_MONTHS}")
    return month_window(last, count)


async def _trend(session: AsyncSession, window: list[str], f: ReportFilters) -> list[dict]:
    """Per month: customers and orders measured, and each rate as the order-weighted mean of the customers' rates
    (a customer with more orders counts more; customers whose rate is unknown do not count)."""
    c = service_level_months.c
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
        .where(c.month.in_(window), *customer_conditions(c.customer_id, f))
        .group_by(c.month)
    )
    rows = {row["month"]: dict(row) for row in (await session.execute(stmt)).mappings()}
    empty = {"customers": 0, "orders": 0, "billing_corrections": 0, "complaints": 0, **{m: None for m in RATE_MEASURES}}
    return [
        {"month": month, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in (rows.get(month) or empty).items() if k != "month"}}
        for month in window
    ]


async def service_level_report(session: AsyncSession, month: str, measure: str, worst: int, f: ReportFilters, trend_months: int) -> dict:
    """The month's filtered customers counted and the `worst` first of them read (LIMIT in SQL: the month's other
    records are not fetched), and the trend."""
    window = trend_window(month, trend_months, f)
    c = service_level_months.c
    counted = select(func.count()).select_from(service_level_months).where(c.month == month, *customer_conditions(c.customer_id, f))
    rows = [dict(r) for r in (await session.execute(_records(month, measure, f).limit(worst))).mappings()]
    return {
        "month": month,
        "measure": measure,
        "tier": f.tier,
        "filters": f.as_dict(),
        "customers": (await session.execute(counted)).scalar_one(),
        "worst": rows,
        "trend": await _trend(session, window, f),
    }


async def service_level_csv(session: AsyncSession, month: str, measure: str, f: ReportFilters) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in (await session.execute(_records(month, measure, f))).mappings():
        writer.writerow(dict(row))
    return out.getvalue()
