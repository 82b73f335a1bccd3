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


def _split(groups: Sequence[Any], key: str, labels: Iterable, customers_total: int, revenue_total: float) -> list[dict]:
    """One split's classes from the grouped rows (a class is the sum of the groups that carry its label)."""
    out = []
    for label in labels:
        rows = [row for row in groups if getattr(row, key) == label]
        count, revenue = sum(row.customers for row in rows), sum(float(row.revenue or 0.0) for row in rows)
        out.append(
            {
                "class": label,
                "customers": count,
                "customer_share": _share(count, customers_total),
                "revenue": round(revenue, 2),
                "revenue_share": _share(revenue, revenue_total),
                "min_value": round(float(min(row.min_value for row in rows)), 2) if rows else None,
            }
        )
    return out


async def abc_report(session: AsyncSession, f: ReportFilters, settings: ScoringSettings) -> dict[str, Any]:
    """The three-way (20/30/50), four-way (the configured ABCD cut-offs) and ten-way (deciles) splits of the filtered
    customers ranked by contribution, with each part's share of customers and of revenue, and the Pareto curve.
    The ranking is read once: one GROUP BY (three-way class, four-way class, decile, in the top 1%) gives a few dozen
    rows, and each split and total is summed from them."""
    ranked = _ranked(f)
    positive = case((ranked.c.value > 0, ranked.c.value), else_=0.0)
    cut = settings.abc_cutoffs
    four_way = (("A", cut.a), ("B", cut.a + cut.b), ("C", cut.a + cut.b + cut.c))
    classed = select(
        _class_of(ranked, THREE_WAY, "C").label("three"),
        _class_of(ranked, four_way, "D").label("four"),
        _decile_of(ranked).label("decile"),
        case((ranked.c.rank - 1 < ranked.c.n * 0.01 - EPS, 1), else_=0).label("top_1pct"),
        positive.label("positive"),
        ranked.c.value,
        ranked.c.contributors,
    ).subquery()
    keys = (classed.c.three, classed.c.four, classed.c.decile, classed.c.top_1pct)
    stmt = select(
        *keys,
        func.count().label("customers"),
        func.sum(classed.c.positive).label("revenue"),
        func.min(classed.c.value).label("min_value"),
        func.max(classed.c.contributors).label("contributors"),
    ).group_by(*keys)
    groups = (await session.execute(stmt)).all()
    n = sum(row.customers for row in groups)
    total = sum(float(row.revenue or 0.0) for row in groups)
    top1 = sum(float(row.revenue or 0.0) for row in groups if row.top_1pct)
    contributors = max((int(row.contributors or 0) for row in groups), default=0)
    three = _split(groups, "three", ("A", "B", "C"), n, total)
    four = _split(groups, "four", ("A", "B", "C", "D"), n, total)
    ten = _split(groups, "decile", range(1, 11), n, total)
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


PARETO_CLASSES = ("A", "B", "C", "D")
PARETO_CURVE_POINTS = 20
PARETO_TOPS = {"top_1pct_share": 1, "top_20pct_share": 20}  # the first ceil(n * percent / 100) customers' share


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


async def pareto_figures(session: AsyncSession, f: ReportFilters) -> dict[str, Any]:
    """Share of customers and share of contribution (the period's revenue when a period is given) per stored ABC class
    (none: D) of the filtered customers, the top 1% and 20%'s shares and the cumulative curve at every 20th of them,
    best first: the figures of the model's `abc.pareto_report`, without loading every contribution into Python. Two
    statements: the classes' GROUP BY, then the running sum of the ranked contributions, read at the curve's points."""
    source, value = _valued(f, c.contribution)
    positive = case((value > 0, value), else_=0.0)
    klass = func.coalesce(c.abc_class, "D")
    classed = scoped(select(klass.label("class_"), positive.label("positive")).select_from(source), f).subquery()
    grouped = select(classed.c.class_, func.count().label("customers"), func.sum(classed.c.positive).label("contribution"))
    found = {row.class_: row for row in await session.execute(grouped.group_by(classed.c.class_))}
    n = sum(row.customers for row in found.values())
    total = sum(float(row.contribution or 0.0) for row in found.values())
    rows = []
    for label in PARETO_CLASSES:
        row = found.get(label)
        count, contribution = (row.customers, float(row.contribution or 0.0)) if row else (0, 0.0)
        rows.append(
            {
                "class": label,
                "customers": count,
                "customer_share": round(count / n, 6) if n else 0.0,
                "contribution": round(contribution, 2),
                "contribution_share": _share(contribution, total),
            }
        )
    curve = [{"customer_share": 0.0, "contribution_share": 0.0}]
    top = dict.fromkeys(PARETO_TOPS, 0.0)
    if n and total:
        points = [_ceil_div(n * i, PARETO_CURVE_POINTS) for i in range(1, PARETO_CURVE_POINTS + 1)]
        tops = {name: max(1, _ceil_div(n * percent, 100)) for name, percent in PARETO_TOPS.items()}
        order = (positive.desc(), c.customer_id)
        ranked = scoped(
            select(
                func.row_number().over(order_by=order).label("rank"),
                func.sum(positive).over(order_by=order, rows=(None, 0)).label("cumulative"),
            ).select_from(source),
            f,
        ).subquery()
        wanted = sorted({*points, *tops.values()})
        cumulative = {row.rank: float(row.cumulative) for row in await session.execute(select(ranked).where(ranked.c.rank.in_(wanted)))}
        curve += [{"customer_share": round(k / n, 6), "contribution_share": round(cumulative[k] / total, 6)} for k in points]
        top = {name: round(cumulative[k] / total, 6) for name, k in tops.items()}
    return {
        "filters": f.as_dict(),
        "customers": n,
        "total_contribution": round(total, 2),
        "classes": rows,
        **top,
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


def _states(f: ReportFilters, start: dt.datetime, end: dt.datetime):
    """The filtered customers with a state announced before `end`, each with the id of its last state announced before
    `start` (none: new) and before `end` (score_history keeps every announced state, ids in announcement order). One
    aggregate over the narrow columns, with no sort and no JSON read: the states are read afterwards, two rows per
    customer (a row_number over the whole history per field and end sorted it four times)."""
    h = score_history.c
    return (
        select(
            h.customer_id,
            func.max(case((h.scored_at < start, h.id))).label("start_id"),
            func.max(h.id).label("end_id"),
        )
        .where(h.scored_at < end, h.customer_id.in_(scoped(select(c.customer_id), f)))
        .group_by(h.customer_id)
        .subquery()
    )


def movement_period(f: ReportFilters, today: dt.date) -> tuple[dt.date, dt.date]:
    if f.period_start is not None and f.period_end is not None:
        return f.period_start, f.period_end
    return today - dt.timedelta(days=DEFAULT_MOVEMENT_DAYS - 1), today


MOVING = {"credit_grade": CREDIT_GRADES, "churn_risk": RISKS}  # each field's values, better first


async def _movements(session: AsyncSession, f: ReportFilters, start: dt.date, end: dt.date) -> dict[str, dict[str, Any]]:
    """Per field, from -> to counts of the filtered customers between the period's start and its end ("new": first
    scored in it): one query groups the customers by both fields' states at both ends (score_history's plain columns,
    no JSON parsed per customer), Python adds up each field's."""
    ids = _states(f, dt.datetime.combine(start, dt.time(), dt.UTC), dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC))
    before, after = score_history.alias("before"), score_history.alias("after")
    states = (
        select(*(side.c[field].label(f"{name}_{i}") for i, field in enumerate(MOVING) for name, side in (("from", before), ("to", after))))
        .select_from(ids.join(after, after.c.id == ids.c.end_id).outerjoin(before, before.c.id == ids.c.start_id))
        .subquery()
    )
    stmt = select(*states.c, func.count().label("customers")).group_by(*states.c)
    counted: dict[str, dict[tuple[str, str], int]] = {field: {} for field in MOVING}
    for row in (await session.execute(stmt)).mappings():
        for i, field in enumerate(MOVING):
            pair = (row[f"from_{i}"] or "new", row[f"to_{i}"] or UNRATED)
            counted[field][pair] = counted[field].get(pair, 0) + row["customers"]
    out: dict[str, dict[str, Any]] = {}
    for field, order in MOVING.items():
        rank = {value: i for i, value in enumerate(order)}
        better = worse = 0
        for (was, now), n in counted[field].items():
            if was in rank and now in rank and rank[now] != rank[was]:
                better, worse = (better + n, worse) if rank[now] < rank[was] else (better, worse + n)
        transitions = [{"from": was, "to": now, "customers": n} for (was, now), n in sorted(counted[field].items())]
        out[field] = {"improved": better, "worsened": worse, "transitions": transitions}
    return out


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
    movements = await _movements(session, f, start, end)
    return {
        "filters": f.as_dict(),
        "customers": total,
        "credit_grades": distribution(0, CREDIT_GRADES),
        "churn_risk": distribution(1, RISKS),
        "grade_by_risk": [
            {"credit_grade": g, "churn_risk": r, "customers": n} for g, r, n in sorted(cross, key=lambda x: (x[0], RISK_ORDER.get(x[1], 9)))
        ],
        "movements": {
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            **movements,
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
