"""Management reports over the whole base: ABC/Pareto splits, the three matrices, credit grades and churn risk with
their movements, the RFM grid and the tiers. Every figure is one grouped SQL query over every stored score (window
functions rank the customers), so nothing is sampled, capped or looped over in Python."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_scoring.model.scores import CREDIT_LOYALTY_CELLS, RISK_ORDER, VALUE_LOYALTY_CELLS, VALUE_MATRIX_CELLS
from crm_scoring.reports.filters import ReportFilters, period_revenue, scoped
from crm_scoring.scoring.models import customer_scores, customers, score_history
from crm_scoring.settings import ScoringSettings

c = customer_scores.c
EPS = 1e-9  # n * 0.05 is 5.000000000000001 in floating point (as in model.abc.class_counts)
THREE_WAY = (("A", 0.20), ("B", 0.50))  # the classic ABC: top 20% of contributors, the next 30%, the rest C
MATRICES = {
    "current_potential": (c.value_matrix, VALUE_MATRIX_CELLS),  # current x potential value: important, medium, big, small
    "value_loyalty": (c.value_loyalty, VALUE_LOYALTY_CELLS),
    "loyalty_credit": (c.credit_loyalty, CREDIT_LOYALTY_CELLS),
}
CREDIT_GRADES = ("A", "B", "C", "D")
RISKS = tuple(sorted(RISK_ORDER, key=RISK_ORDER.__getitem__))
UNRATED = "unrated"
CELL_CUSTOMER_COLUMNS = [
    "customer_id",
    "name",
    "region",
    "industry",
    "account_manager",
    "tier",
    "abc_class",
    "credit_grade",
    "churn_risk",
    "current_value",
    "potential_value",
    "loyalty",
    "revenue",
]
DEFAULT_MOVEMENT_DAYS = 90


def _share(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0


def _valued(f: ReportFilters, stored: ColumnElement) -> tuple[Any, ColumnElement]:
    """(FROM clause, value per customer): the period's order revenue when a period is given, else the stored column."""
    if not f.has_period:
        return customer_scores, func.coalesce(stored, 0.0)
    revenue = period_revenue(f)
    return customer_scores.outerjoin(revenue, revenue.c.customer_id == c.customer_id), func.coalesce(revenue.c.revenue, 0.0)


# ---------------------------------------------------------------- ABC / Pareto


def _ranked(f: ReportFilters):
    """Every filtered customer with its value, its rank (best first), the population and the number of contributors."""
    source, value = _valued(f, c.contribution)
    stmt = select(
        c.customer_id,
        value.label("value"),
        func.row_number().over(order_by=(value.desc(), c.customer_id)).label("rank"),
        func.count().over().label("n"),
        func.sum(case((value > 0, 1), else_=0)).over().label("contributors"),
    ).select_from(source)
    return scoped(stmt, f).subquery()


def _class_of(ranked, cumulative: Sequence[tuple[str, float]], rest: str):
    """A contributor's class from its rank among the contributors: the first `share` of them (rounded up) are in the first
    class, and so on; customers contributing nothing are in the last class."""
    whens = [(and_(ranked.c.value > 0, ranked.c.rank - 1 < ranked.c.contributors * share - EPS), label) for label, share in cumulative]
    return case(*whens, else_=literal(rest))


def _decile_of(ranked):
    return (ranked.c.rank - 1) * 10 // ranked.c.n + 1


async def _split(session: AsyncSession, ranked, bucket, labels: Iterable, customers_total: int, revenue_total: float) -> list[dict]:
    positive = case((ranked.c.value > 0, ranked.c.value), else_=0.0)
    stmt = select(
        bucket.label("bucket"),
        func.count().label("customers"),
        func.sum(positive).label("revenue"),
        func.min(ranked.c.value).label("min_value"),
    ).group_by(bucket)
    found = {row.bucket: row for row in (await session.execute(stmt))}
    out = []
    for label in labels:
        row = found.get(label)
        count, revenue = (row.customers, float(row.revenue or 0.0)) if row else (0, 0.0)
        out.append(
            {
                "class": label,
                "customers": count,
                "customer_share": _share(count, customers_total),
                "revenue": round(revenue, 2),
                "revenue_share": _share(revenue, revenue_total),
                "min_value": None if row is None else round(float(row.min_value), 2),
            }
        )
    return out


async def abc_report(session: AsyncSession, f: ReportFilters, settings: ScoringSettings) -> dict[str, Any]:
    """The three-way (20/30/50), four-way (the configured ABCD cut-offs) and ten-way (deciles) splits of the filtered
    customers ranked by contribution, with each part's share of customers and of revenue, and the Pareto curve."""
    ranked = _ranked(f)
    positive = case((ranked.c.value > 0, ranked.c.value), else_=0.0)
    top_1pct = case((ranked.c.rank - 1 < ranked.c.n * 0.01 - EPS, positive), else_=0.0)
    totals = (await session.execute(select(func.count(), func.sum(positive), func.sum(top_1pct), func.max(ranked.c.contributors)))).one()
    n, total, top1, contributors = totals[0], float(totals[1] or 0.0), float(totals[2] or 0.0), int(totals[3] or 0)
    cut = settings.abc_cutoffs
    four_way = (("A", cut.a), ("B", cut.a + cut.b), ("C", cut.a + cut.b + cut.c))
    three = await _split(session, ranked, _class_of(ranked, THREE_WAY, "C"), ("A", "B", "C"), n, total)
    four = await _split(session, ranked, _class_of(ranked, four_way, "D"), ("A", "B", "C", "D"), n, total)
    ten = await _split(session, ranked, _decile_of(ranked), range(1, 11), n, total)
    curve, cumulative = [{"customer_share": 0.0, "revenue_share": 0.0}], 0.0
    customers_so_far = 0
    for decile in ten:
        customers_so_far += decile["customers"]
        cumulative += decile["revenue"]
        if decile["customers"]:
            curve.append({"customer_share": _share(customers_so_far, n), "revenue_share": _share(cumulative, total)})
    return {
        "filters": f.as_dict(),
        "basis": "period revenue" if f.has_period else settings.abc_basis,
        "customers": n,
        "contributors": contributors,
        "total": round(total, 2),
        "top_1pct_share": _share(top1, total),
        "top_20pct_share": _share(sum(d["revenue"] for d in ten[:2]), total),
        "splits": {
            "three_way": {"cutoffs": {"A": 0.2, "B": 0.3, "C": 0.5}, "classes": three},
            "four_way": {"cutoffs": {"A": cut.a, "B": cut.b, "C": cut.c, "D": round(1 - cut.a - cut.b - cut.c, 6)}, "classes": four},
            "ten_way": {"cutoffs": "deciles of all the filtered customers", "classes": ten},
        },
        "curve": curve,
    }


def abc_csv_rows(report: dict[str, Any]) -> list[dict]:
    return [{"split": name, **row} for name, split in report["splits"].items() for row in split["classes"]]


# ---------------------------------------------------------------- matrices


async def matrix_report(session: AsyncSession, f: ReportFilters) -> dict[str, Any]:
    """Customers and revenue (the last 12 months', or the period's) per cell of each matrix."""
    source, revenue = _valued(f, c.revenue_12m)
    out: dict[str, Any] = {"filters": f.as_dict(), "revenue_basis": "period revenue" if f.has_period else "revenue_12m", "matrices": {}}
    for name, (column, cells) in MATRICES.items():
        stmt = scoped(
            select(column.label("cell"), func.count().label("customers"), func.sum(revenue).label("revenue")).select_from(source), f
        ).group_by(column)
        found = {row.cell: row for row in await session.execute(stmt)}
        customers_total = sum(row.customers for row in found.values())
        revenue_total = sum(float(row.revenue or 0.0) for row in found.values())
        rows = []
        for cell in (*cells, None):
            row = found.get(cell)
            if cell is None and row is None:
                continue  # customers not yet placed in the matrix are listed only when there are some
            count, money = (row.customers, float(row.revenue or 0.0)) if row else (0, 0.0)
            rows.append(
                {
                    "cell": cell or UNRATED,
                    "customers": count,
                    "customer_share": _share(count, customers_total),
                    "revenue": round(money, 2),
                    "revenue_share": _share(money, revenue_total),
                }
            )
        out["matrices"][name] = {"customers": customers_total, "revenue": round(revenue_total, 2), "cells": rows}
    return out


def matrix_csv_rows(report: dict[str, Any]) -> list[dict]:
    return [{"matrix": name, **row} for name, matrix in report["matrices"].items() for row in matrix["cells"]]


def cell_customers_query(f: ReportFilters, matrix: str, cell: str):
    """The filtered customers of one cell, by revenue (largest first)."""
    column, _ = MATRICES[matrix]
    source, revenue = _valued(f, c.revenue_12m)
    stmt = (
        select(
            c.customer_id,
            customers.c.name,
            customers.c.region,
            customers.c.industry,
            customers.c.account_manager,
            c.tier,
            c.abc_class,
            c.credit_grade,
            c.churn_risk,
            c.current_value,
            c.potential_value,
            c.loyalty,
            revenue.label("revenue"),
        )
        .select_from(source.outerjoin(customers, customers.c.customer_id == c.customer_id))
        .where(column.is_(None) if cell == UNRATED else column == cell)
        .order_by(revenue.desc(), c.customer_id)
    )
    return scoped(stmt, f)


async def cell_customers(session: AsyncSession, f: ReportFilters, matrix: str, cell: str, limit: int, offset: int) -> dict[str, Any]:
    stmt = cell_customers_query(f, matrix, cell)
    total = (await session.execute(select(func.count()).select_from(stmt.order_by(None).subquery()))).scalar_one()
    rows = (await session.execute(stmt.limit(limit).offset(offset))).mappings().all()
    return {"filters": f.as_dict(), "matrix": matrix, "cell": cell, "customers": total, "offset": offset, "items": [dict(r) for r in rows]}


# ---------------------------------------------------------------- credit grades and churn risk


def _state_at(field: str, before: dt.datetime):
    """Each customer's last announced `field` before `before` (score_history keeps every announced state)."""
    h = score_history.c
    latest = func.row_number().over(partition_by=h.customer_id, order_by=h.id.desc()).label("latest")
    inner = select(h.customer_id, h.scores[field].as_string().label("value"), latest).where(h.scored_at < before).subquery()
    return select(inner.c.customer_id, inner.c.value).where(inner.c.latest == 1).subquery()


def movement_period(f: ReportFilters, today: dt.date) -> tuple[dt.date, dt.date]:
    if f.period_start is not None and f.period_end is not None:
        return f.period_start, f.period_end
    return today - dt.timedelta(days=DEFAULT_MOVEMENT_DAYS - 1), today


async def _movements(
    session: AsyncSession, f: ReportFilters, field: str, start: dt.date, end: dt.date, order: Sequence[str]
) -> dict[str, Any]:
    """From -> to counts of the filtered customers between the period's start and its end ("new": first scored in it)."""
    at_start = _state_at(field, dt.datetime.combine(start, dt.time(), dt.UTC))
    at_end = _state_at(field, dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC))
    population = scoped(select(c.customer_id), f)
    stmt = (
        select(at_start.c.value.label("from_"), at_end.c.value.label("to"), func.count().label("customers"))
        .select_from(at_end.outerjoin(at_start, at_start.c.customer_id == at_end.c.customer_id))
        .where(at_end.c.customer_id.in_(population))
        .group_by(at_start.c.value, at_end.c.value)
    )
    rank = {value: i for i, value in enumerate(order)}  # better first
    rows, better, worse = [], 0, 0
    for row in await session.execute(stmt):
        before, after = row.from_ or "new", row.to or UNRATED
        rows.append({"from": before, "to": after, "customers": row.customers})
        if before in rank and after in rank and rank[after] != rank[before]:
            better, worse = (better + row.customers, worse) if rank[after] < rank[before] else (better, worse + row.customers)
    rows.sort(key=lambda r: (r["from"], r["to"]))
    return {"improved": better, "worsened": worse, "transitions": rows}


async def credit_churn_report(session: AsyncSession, f: ReportFilters, today: dt.date) -> dict[str, Any]:
    """Today's distribution of credit grades and churn risk (and their cross-table), and each one's movements over the
    period (by default the last 90 days)."""
    stmt = scoped(select(c.credit_grade, c.churn_risk, func.count().label("customers")), f).group_by(c.credit_grade, c.churn_risk)
    cross = [(row.credit_grade or UNRATED, row.churn_risk, row.customers) for row in await session.execute(stmt)]
    total = sum(n for *_, n in cross)

    def distribution(index: int, labels: Sequence[str]) -> list[dict]:
        counts: dict[str, int] = {}
        for row in cross:
            counts[row[index]] = counts.get(row[index], 0) + row[2]
        extra = sorted(set(counts) - set(labels))
        return [
            {"value": label, "customers": counts.get(label, 0), "share": _share(counts.get(label, 0), total)} for label in (*labels, *extra)
        ]

    start, end = movement_period(f, today)
    risks_best_first = RISKS  # low, medium, high
    return {
        "filters": f.as_dict(),
        "customers": total,
        "credit_grades": distribution(0, CREDIT_GRADES),
        "churn_risk": distribution(1, risks_best_first),
        "grade_by_risk": [
            {"credit_grade": g, "churn_risk": r, "customers": n} for g, r, n in sorted(cross, key=lambda x: (x[0], RISK_ORDER.get(x[1], 9)))
        ],
        "movements": {
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "credit_grade": await _movements(session, f, "credit_grade", start, end, CREDIT_GRADES),
            "churn_risk": await _movements(session, f, "churn_risk", start, end, risks_best_first),
        },
    }


def credit_churn_csv_rows(report: dict[str, Any]) -> list[dict]:
    rows = [
        {"section": name, "from": "", "to": d["value"], "customers": d["customers"]}
        for name in ("credit_grades", "churn_risk")
        for d in report[name]
    ]
    for name in ("credit_grade", "churn_risk"):
        rows += [{"section": f"{name}_movement", **t} for t in report["movements"][name]["transitions"]]
    return rows


# ---------------------------------------------------------------- RFM grid and tiers


async def rfm_report(session: AsyncSession, f: ReportFilters) -> dict[str, Any]:
    """Customers per (R, F) cell and per segment (F = 0: no order in the window)."""
    count = func.count().label("count")
    cells = (
        await session.execute(
            scoped(select(c.rfm_r, c.rfm_f, count).where(c.rfm_r.is_not(None)), f).group_by(c.rfm_r, c.rfm_f).order_by(c.rfm_r, c.rfm_f)
        )
    ).all()
    segments = (
        await session.execute(scoped(select(c.rfm_segment, count).where(c.rfm_segment.is_not(None)), f).group_by(c.rfm_segment))
    ).all()
    return {
        "filters": f.as_dict(),
        "customers": sum(n for _, _, n in cells),
        "cells": [{"r": r, "f": freq, "count": n} for r, freq, n in cells],
        "segments": [{"segment": s, "count": n} for s, n in sorted(segments, key=lambda row: (-row[1], row[0]))],
    }


def rfm_csv_rows(report: dict[str, Any]) -> list[dict]:
    return [{"r": cell["r"], "f": cell["f"], "customers": cell["count"]} for cell in report["cells"]]


async def tier_report(session: AsyncSession, f: ReportFilters) -> dict[str, Any]:
    tiers = (await session.execute(scoped(select(c.tier, func.count()), f).group_by(c.tier))).all()
    return {
        "filters": f.as_dict(),
        "customers": sum(n for _, n in tiers),
        "tiers": [{"tier": t, "count": n} for t, n in sorted(tiers, key=lambda row: (-row[1], row[0]))],
    }


def tier_csv_rows(report: dict[str, Any]) -> list[dict]:
    return [{"tier": t["tier"], "customers": t["count"]} for t in report["tiers"]]


def to_csv(rows: Iterable[dict], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
