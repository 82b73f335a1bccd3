"""Reports: the Pareto report (JSON and chart) and the model report with its holdout check (the management reports:
crm_scoring.reports)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_scoring.model import bgnbd
from crm_scoring.reports.filters import ReportFilters
from crm_scoring.reports.service import pareto_figures
from crm_scoring.scoring.ingest import day_number
from crm_scoring.scoring.models import orders
from crm_scoring.scoring.service import load_model
from crm_scoring.settings import ScoringSettings

EPOCH_DATE = dt.date(1970, 1, 1)


async def pareto(session: AsyncSession, settings: ScoringSettings, f: ReportFilters | None = None) -> dict[str, Any]:
    """Share of customers vs share of contribution, per ABC class and as a curve, from the stored scores of the
    customers the management reports' filters keep (a period: its revenue is the contribution)."""
    f = f or ReportFilters()
    report = await pareto_figures(session, f)
    model = await load_model(session)
    report["basis"] = "period revenue" if f.has_period else (model.abc_basis if model is not None else settings.abc_basis)
    report["cutoffs"] = settings.abc_cutoffs.model_dump()
    report["thresholds"] = model.abc.as_dict() if model is not None else None
    report["model_as_of"] = None if model is None else (dt.date(1970, 1, 1) + dt.timedelta(days=model.as_of_day)).isoformat()
    return report


def _figure(size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100)


def _render(figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()


def pareto_chart(report: dict[str, Any], fmt: str) -> bytes:
    figure = _figure((7, 4.5))
    ax = figure.subplots()
    xs = [100 * p["customer_share"] for p in report["curve"]]
    ys = [100 * p["contribution_share"] for p in report["curve"]]
    ax.plot(xs, ys, marker="o", color="#1f77b4", label="cumulative share of " + report.get("basis", "revenue"))
    ax.plot([0, 100], [0, 100], linestyle="--", color="grey", linewidth=0.8, label="equal shares")
    cumulative = 0.0
    for row in report["classes"]:
        cumulative += 100 * row["customer_share"]
        if row["class"] != "D" and row["customers"]:
            ax.axvline(cumulative, color="#d62728", linewidth=0.6, alpha=0.6)
            ax.text(cumulative, 5, f" {row['class']}|", color="#d62728", fontsize=8)
    ax.set_xlabel("customers, best first (%)")
    ax.set_ylabel("share of contribution (%)")
    ax.set_title(f"Pareto: top 20% of customers bring {100 * report['top_20pct_share']:.0f}%")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right", fontsize=8)
    return _render(figure, fmt)


def model_chart(report: dict[str, Any], fmt: str) -> bytes:
    """The two standard BG/NBD checks: mean holdout repeat order days per calibration-frequency group (0..6, 7+), actual
    and predicted; and the cohort's weekly cumulative repeat order days, actual and predicted, through calibration and holdout."""
    figure = _figure((12, 4.6))
    by_group, weekly = figure.subplots(1, 2)
    groups = report["holdout"]["by_calibration_orders"]
    labels = [g["calibration_repeat_orders"] for g in groups]
    by_group.plot(labels, [g["actual_mean"] for g in groups], marker="o", color="#1f77b4", label="actual")
    by_group.plot(labels, [g["predicted_mean"] for g in groups], marker="s", linestyle="--", color="#d62728", label="predicted (BG/NBD)")
    by_group.set_xlabel("repeat order days in calibration")
    by_group.set_ylabel(f"mean repeat order days in the {report['holdout_weeks']:.0f}-week holdout")
    by_group.set_title("Holdout by calibration frequency")
    by_group.legend(loc="upper left", fontsize=8)
    points = report["weekly_cumulative"]
    weeks = list(range(1, len(points) + 1))
    weekly.plot(weeks, [p["actual"] for p in points], color="#1f77b4", label="actual")
    weekly.plot(weeks, [p["predicted"] for p in points], linestyle="--", color="#d62728", label="predicted (BG/NBD)")
    calibration_weeks = sum(1 for p in points if not p["holdout"])
    weekly.axvline(calibration_weeks + 0.5, color="grey", linewidth=0.8, linestyle=":")
    weekly.text(calibration_weeks + 0.5, 0, f" calibration end {report['calibration_end']}", color="grey", fontsize=8, va="bottom")
    weekly.set_xlabel("week")
    weekly.set_ylabel("cumulative repeat order days")
    weekly.set_title("Weekly cumulative repeat transactions")
    weekly.legend(loc="upper left", fontsize=8)
    p = report["parameters"]
    figure.suptitle(
        f"BG/NBD r={p['r']:.3g} alpha={p['alpha']:.3g} a={p['a']:.3g} b={p['b']:.3g}, {report['customers']} customers", fontsize=10
    )
    figure.tight_layout()
    return _render(figure, fmt)


async def order_days(session: AsyncSession) -> pd.DataFrame:
    """(customer_id, order_day) of every order that counts, duplicates included (the report drops them: cheaper in pandas
    than DISTINCT in SQLite), built column by column (from_records on 10^5 rows is slow)."""
    stmt = select(orders.c.customer_id, orders.c.order_day).where(orders.c.order_day.is_not(None), orders.c.cancelled_at.is_(None))
    rows = (await session.execute(stmt)).all()
    return pd.DataFrame(
        {"customer_id": [r[0] for r in rows], "order_day": np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))}
    )


def calibration_summary(days: pd.DataFrame, calibration_end: dt.date, holdout_end: dt.date) -> pd.DataFrame:
    """Per customer who ordered by calibration_end (index customer_id): x = repeat order days, t_x = last - first order
    day and T = calibration_end - first order day, in weeks (days / 7), as in Fader, Hardie and Lee (2005) and the
    common libraries; `holdout` = order days in (calibration_end, holdout_end]; `first_day` = the first order day."""
    cal_day, end_day = day_number(calibration_end), day_number(holdout_end)
    if end_day <= cal_day:
        raise ValueError("the holdout period is empty: calibration_end must be before the last order date")
    days = days.drop_duplicates()
    calibration = days[days["order_day"] <= cal_day]
    holdout = days[(days["order_day"] > cal_day) & (days["order_day"] <= end_day)]
    g = calibration.groupby("customer_id")["order_day"]
    first, last, count = g.min(), g.max(), g.size()
    return pd.DataFrame(
        {
            "x": (count - 1).astype(float),
            "t_x": (last - first) / 7.0,
            "T": (cal_day - first) / 7.0,
            "holdout": holdout.groupby("customer_id").size().reindex(count.index, fill_value=0).astype(float),
            "first_day": first,
        }
    )


def model_report_from_days(days: pd.DataFrame, calibration_end: dt.date, holdout_end: dt.date) -> dict[str, Any]:
    """Fit BG/NBD on the order days up to calibration_end; compare predicted with actual repeat order days after it."""
    summary = calibration_summary(days, calibration_end, holdout_end)
    if len(summary) < 20:
        raise ValueError(f"only {len(summary)} customers ordered by {calibration_end}: too few to fit")
    x, t_x, T, actual = (summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T", "holdout"))
    fit = bgnbd.fit(x, t_x, T)
    horizon = (day_number(holdout_end) - day_number(calibration_end)) / 7.0
    predicted = bgnbd.conditional_expected_purchases(fit.params, horizon, x, t_x, T)
    frame = pd.DataFrame({"x": x, "predicted": predicted, "actual": actual})
    frame["group"] = np.where(frame["x"] >= 7, "7+", frame["x"].astype(int).astype(str))
    groups = []
    for label, part in frame.groupby("group", sort=False):
        groups.append(
            {
                "calibration_repeat_orders": label,
                "customers": int(len(part)),
                "predicted_mean": round(float(part["predicted"].mean()), 4),
                "actual_mean": round(float(part["actual"].mean()), 4),
            }
        )
    groups.sort(key=lambda g: (g["calibration_repeat_orders"] == "7+", g["calibration_repeat_orders"]))
    return {
        "calibration_end": calibration_end.isoformat(),
        "holdout_end": holdout_end.isoformat(),
        "holdout_weeks": round(horizon, 3),
        "customers": fit.customers,
        "transaction_unit": "distinct order days (repeat = after the first)",
        "time_unit": "week",
        "time_convention": "T = calibration_end - first order day, t_x = last - first order day, in days / 7",
        "parameters": {k: round(v, 6) for k, v in fit.params.as_dict().items()},
        "log_likelihood": round(fit.log_likelihood, 4),
        "converged": fit.converged,
        "holdout": {
            "predicted_total": round(float(predicted.sum()), 3),
            "actual_total": float(actual.sum()),
            "by_calibration_orders": groups,
        },
        "weekly_cumulative": weekly_cumulative(days, summary, fit.params, calibration_end, holdout_end),
        "note": "Customers first seen after calibration_end are not in the check.",
    }


def weekly_cumulative(
    days: pd.DataFrame, summary: pd.DataFrame, params: bgnbd.BgNbdParams, calibration_end: dt.date, holdout_end: dt.date
) -> list[dict[str, Any]]:
    """Cumulative repeat order days of the calibration cohort, actual and predicted (sum over customers of E[X(age)]), at
    the end of each week from the cohort's first order day through the holdout (the last point is holdout_end)."""
    start, cal_day, end_day = int(summary["first_day"].min()), day_number(calibration_end), day_number(holdout_end)
    ends = np.unique(np.append(np.arange(start + 7, end_day, 7), end_day))
    cohort = days.drop_duplicates()
    cohort = cohort[cohort["customer_id"].isin(summary.index)]
    repeat_days = np.sort(
        cohort["order_day"].to_numpy()[cohort["order_day"].to_numpy() > summary["first_day"].reindex(cohort["customer_id"]).to_numpy()]
    )
    actual = np.searchsorted(repeat_days, ends, side="right")
    first_days, cohort_sizes = np.unique(summary["first_day"].to_numpy(), return_counts=True)
    ages = np.maximum(ends[:, None] - first_days[None, :], 0) / 7.0
    predicted = (bgnbd.expected_purchases(params, ages) * cohort_sizes[None, :]).sum(axis=1)
    return [
        {
            "week_ending": (EPOCH_DATE + dt.timedelta(days=int(day))).isoformat(),
            "holdout": bool(day > cal_day),
            "actual": int(a),
            "predicted": round(float(p), 3),
        }
        for day, a, p in zip(ends, actual, predicted)
    ]


class ModelCannotFit(ValueError):
    """The model report's periods or data do not allow a fit (no orders, an empty holdout, too few customers)."""


async def model_report(session: AsyncSession, calibration_end: dt.date, holdout_end: dt.date | None = None) -> dict[str, Any]:
    days = await order_days(session)
    if days.empty:
        raise ModelCannotFit("no orders yet")
    last = dt.date(1970, 1, 1) + dt.timedelta(days=int(days["order_day"].max()))
    try:
        return await asyncio.to_thread(model_report_from_days, days, calibration_end, holdout_end or last)
    except ValueError as exc:  # the periods or the data refused by the fit
        raise ModelCannotFit(str(exc)) from None
