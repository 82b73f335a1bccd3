"""Reference implementation of the features with plain pandas groupbys (the service uses a numpy version; a test checks they agree).

Time is counted in whole days since 1970-01-01 (`day` numbers); `as_of_day` is the scoring day.
Inputs are DataFrames with these columns (extra columns are ignored):

* orders: customer_id, order_day, amount, margin (effective), service_type, cancelled, shipped,
  on_time (1.0 / 0.0 / NaN when no promise or no delivery), damaged, lost, loss
* complaints: customer_id, filed_day, resolved_day (NaN when open), within_sla (1/0/NaN), priority, compensation
* surveys: customer_id, score, answered_day
* invoices: customer_id, amount, due_day, paid_day (NaN when unpaid), days_overdue (largest reported)
* customers: customer_id, credit_limit, share_of_wallet, potential_volume (share_of_wallet: the declared one, else
  revenue_window / potential_volume capped at 1), size_band (key_account_flag: "key_account")
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The input schema is shared with the service; only the computation below is independent of it.
from crm_scoring.model.features import (
    COMPLAINT_COLUMNS,
    CUSTOMER_COLUMNS,
    INVOICE_COLUMNS,
    ORDER_COLUMNS,
    RECENT_DAYS,
    SURVEY_COLUMNS,
    Facts,
    _frame,
    customer_index,
)


def compute_features(facts: Facts, as_of_day: int, window_days: int = 365, default_days: int = 90) -> pd.DataFrame:
    """One row per customer (index: customer_id). Customers are grouped by integer code internally:
    hashing the id strings once per frame instead of once per aggregation is most of the speed."""
    ids = customer_index(facts)
    positions = pd.RangeIndex(len(ids))
    coded = lambda df, cols: _coded(_frame(df, cols), ids)  # noqa: E731
    out = pd.DataFrame(index=positions)
    _order_features(out, coded(facts.orders, ORDER_COLUMNS), as_of_day, window_days)
    _complaint_features(out, coded(facts.complaints, COMPLAINT_COLUMNS), coded(facts.surveys, SURVEY_COLUMNS), as_of_day)
    _invoice_features(out, coded(facts.invoices, INVOICE_COLUMNS), as_of_day, default_days)
    customers = coded(facts.customers, CUSTOMER_COLUMNS).drop_duplicates("customer_id").set_index("customer_id")
    out["credit_limit"] = pd.to_numeric(customers["credit_limit"], errors="coerce").reindex(positions)
    declared = pd.to_numeric(customers["share_of_wallet"], errors="coerce").reindex(positions)
    potential = pd.to_numeric(customers["potential_volume"], errors="coerce").reindex(positions)
    estimated = (out["revenue_window"] / potential.where(potential > 0)).clip(upper=1.0)
    out["share_of_wallet"] = declared.fillna(estimated)
    out["key_account_flag"] = (customers["size_band"] == "key_account").reindex(positions, fill_value=False).astype(bool)
    out.index = ids
    return out


def _coded(df: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    return df.assign(customer_id=ids.get_indexer(df["customer_id"].astype(str)))


def _sum_by(df: pd.DataFrame, column: str, mask, index) -> pd.Series:
    return df.loc[mask].groupby("customer_id")[column].sum().reindex(index, fill_value=0)


def _order_features(out: pd.DataFrame, orders: pd.DataFrame, as_of: int, window: int) -> None:
    index = out.index
    orders = orders[orders["order_day"].notna()]
    orders = orders.assign(
        order_day=orders["order_day"].astype(np.int64),
        amount=pd.to_numeric(orders["amount"], errors="coerce").fillna(0.0).astype(float),
        margin=pd.to_numeric(orders["margin"], errors="coerce").fillna(0.0).astype(float),
        cancelled=orders["cancelled"].fillna(False).astype(bool),
    )
    live = orders[(~orders["cancelled"]) & (orders["order_day"] <= as_of)]
    g = live.groupby("customer_id")
    out["orders_total"] = g.size().reindex(index, fill_value=0).astype(int)
    out["first_order_day"] = g["order_day"].min().reindex(index)
    out["last_order_day"] = g["order_day"].max().reindex(index)
    out["revenue_total"] = g["amount"].sum().reindex(index, fill_value=0.0)
    out["margin_total"] = g["margin"].sum().reindex(index, fill_value=0.0)
    out["services_used"] = g["service_type"].nunique().reindex(index, fill_value=0).astype(int)

    # distinct order days: the "transactions" of BG/NBD and the gaps of regularity
    days = live[["customer_id", "order_day"]].drop_duplicates().sort_values(["customer_id", "order_day"])
    out["order_days"] = days.groupby("customer_id").size().reindex(index, fill_value=0).astype(int)
    gaps = days.assign(gap=days.groupby("customer_id")["order_day"].diff()).dropna(subset=["gap"])
    gg = gaps.groupby("customer_id")["gap"]
    gap_mean = gg.mean().reindex(index)
    gap_std = gg.std(ddof=0).reindex(index)
    gap_count = gg.size().reindex(index, fill_value=0)
    out["gap_cv"] = (gap_std / gap_mean).where(gap_count >= 2)

    in_window = live["order_day"] > as_of - window
    out["orders_window"] = live[in_window].groupby("customer_id").size().reindex(index, fill_value=0).astype(int)
    out["revenue_window"] = _sum_by(live, "amount", in_window, index)
    out["margin_window"] = _sum_by(live, "margin", in_window, index)
    out["avg_order_window"] = (out["revenue_window"] / out["orders_window"].replace(0, np.nan)).fillna(0.0)

    # continuity and growth over 12 monthly buckets (30-day months ending at as_of)
    month = ((as_of - live["order_day"]) // 30).astype(np.int64)
    recent12 = live.assign(month=month)[month < 12]
    out["months_active"] = recent12.groupby("customer_id")["month"].nunique().reindex(index, fill_value=0).astype(int)
    monthly = recent12.groupby(["customer_id", "month"])["amount"].sum().unstack(fill_value=0.0)
    monthly = monthly.reindex(columns=range(12), fill_value=0.0).reindex(index, fill_value=0.0)
    # column m is m months ago: time runs 11 - m; least-squares slope per customer, relative to the mean
    t = 11 - np.arange(12, dtype=float)
    tc = t - t.mean()
    values = monthly.to_numpy(dtype=float)
    mean = values.mean(axis=1)
    slope = (values - mean[:, None]) @ tc / (tc @ tc)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(mean > 0, slope * 12 / mean, np.nan)
    out["growth_rate"] = growth  # relative change of monthly revenue over a year

    # ordering frequency against the customer's own history
    out["order_days_recent"] = days[days["order_day"] > as_of - RECENT_DAYS].groupby("customer_id").size().reindex(index, fill_value=0)
    before = days[days["order_day"] <= as_of - RECENT_DAYS]
    out["order_days_before"] = before.groupby("customer_id").size().reindex(index, fill_value=0)

    # service quality
    shipped = live[live["shipped"].fillna(False).astype(bool)]
    out["shipments"] = shipped.groupby("customer_id").size().reindex(index, fill_value=0).astype(int)
    on_time = pd.to_numeric(shipped["on_time"], errors="coerce")
    known = shipped.assign(on_time=on_time)[on_time.notna()]
    out["on_time_known"] = known.groupby("customer_id").size().reindex(index, fill_value=0)
    out["on_time_count"] = known.groupby("customer_id")["on_time"].sum().reindex(index, fill_value=0.0)
    incident = shipped["damaged"].fillna(False).astype(bool) | shipped["lost"].fillna(False).astype(bool)
    out["incidents"] = incident.groupby(shipped["customer_id"]).sum().reindex(index, fill_value=0)
    out["incident_loss"] = (
        pd.to_numeric(shipped["loss"], errors="coerce").fillna(0.0).groupby(shipped["customer_id"]).sum().reindex(index, fill_value=0.0)
    )
    recent_shipped = shipped[shipped["order_day"] > as_of - RECENT_DAYS]
    out["shipments_recent"] = recent_shipped.groupby("customer_id").size().reindex(index, fill_value=0)
    rk = recent_shipped.assign(on_time=pd.to_numeric(recent_shipped["on_time"], errors="coerce"))
    rk = rk[rk["on_time"].notna()]
    out["on_time_known_recent"] = rk.groupby("customer_id").size().reindex(index, fill_value=0)
    out["on_time_count_recent"] = rk.groupby("customer_id")["on_time"].sum().reindex(index, fill_value=0.0)
    rinc = recent_shipped["damaged"].fillna(False).astype(bool) | recent_shipped["lost"].fillna(False).astype(bool)
    out["incidents_recent"] = rinc.groupby(recent_shipped["customer_id"]).sum().reindex(index, fill_value=0)

    # model inputs (weeks): repeat transactions, time of the last, age
    first = out["first_order_day"]
    out["bg_x"] = (out["order_days"] - 1).clip(lower=0)
    out["bg_t_x"] = ((out["last_order_day"] - first) / 7.0).fillna(0.0)
    out["bg_T"] = ((as_of - first) / 7.0).fillna(0.0)
    out["orders_per_day"] = (out["orders_total"] / out["order_days"].replace(0, np.nan)).fillna(1.0)
    repeat = live[live["order_day"] > live["customer_id"].map(first)]
    out["gg_x"] = out["bg_x"]
    out["gg_mean"] = repeat.groupby("customer_id")["margin"].sum().reindex(index) / out["bg_x"].replace(0, np.nan)


def _complaint_features(out: pd.DataFrame, complaints: pd.DataFrame, surveys: pd.DataFrame, as_of: int) -> None:
    index = out.index
    filed = pd.to_numeric(complaints["filed_day"], errors="coerce")
    resolved = pd.to_numeric(complaints["resolved_day"], errors="coerce")
    complaints = complaints.assign(filed_day=filed, resolved_day=resolved)
    complaints = complaints[complaints["filed_day"].isna() | (complaints["filed_day"] <= as_of)]
    g = complaints.groupby("customer_id")
    out["complaints"] = g.size().reindex(index, fill_value=0)
    is_resolved = complaints["resolved_day"].notna()
    out["complaints_resolved"] = is_resolved.groupby(complaints["customer_id"]).sum().reindex(index, fill_value=0)
    within = pd.to_numeric(complaints["within_sla"], errors="coerce").fillna(0.0).where(is_resolved, 0.0)
    out["complaints_within_sla"] = within.groupby(complaints["customer_id"]).sum().reindex(index, fill_value=0.0)
    sla = pd.to_numeric(complaints["sla_days"], errors="coerce").fillna(3.0)
    overdue_open = (~is_resolved) & complaints["filed_day"].notna() & ((as_of - complaints["filed_day"]) > sla)
    out["open_past_sla"] = overdue_open.groupby(complaints["customer_id"]).sum().reindex(index, fill_value=0)
    recent = complaints["filed_day"] > as_of - RECENT_DAYS
    out["complaints_recent"] = recent.groupby(complaints["customer_id"]).sum().reindex(index, fill_value=0)
    out["compensation"] = (
        pd.to_numeric(complaints["compensation"], errors="coerce")
        .fillna(0.0)
        .groupby(complaints["customer_id"])
        .sum()
        .reindex(index, fill_value=0.0)
    )

    surveys = surveys.assign(score=pd.to_numeric(surveys["score"], errors="coerce"))
    out["surveys"] = surveys.groupby("customer_id").size().reindex(index, fill_value=0)
    out["survey_mean"] = surveys.groupby("customer_id")["score"].mean().reindex(index)
    answered = pd.to_numeric(surveys["answered_day"], errors="coerce")
    recent_s = surveys[answered > as_of - RECENT_DAYS]
    out["survey_mean_recent"] = recent_s.groupby("customer_id")["score"].mean().reindex(index)


def _invoice_features(out: pd.DataFrame, invoices: pd.DataFrame, as_of: int, default_days: int) -> None:
    index = out.index
    inv = invoices.assign(
        amount=pd.to_numeric(invoices["amount"], errors="coerce").fillna(0.0),
        due_day=pd.to_numeric(invoices["due_day"], errors="coerce"),
        paid_day=pd.to_numeric(invoices["paid_day"], errors="coerce"),
        days_overdue=pd.to_numeric(invoices["days_overdue"], errors="coerce").fillna(0.0),
    )
    paid = inv["paid_day"].notna()
    late_at_payment = (inv["paid_day"] - inv["due_day"]).clip(lower=0).where(paid, 0.0).fillna(0.0)
    open_overdue = (as_of - inv["due_day"]).clip(lower=0).where(~paid, 0.0).fillna(0.0)
    worst = pd.concat([late_at_payment, open_overdue, inv["days_overdue"]], axis=1).max(axis=1)
    inv = inv.assign(
        paid=paid,
        on_time=paid & (late_at_payment <= 0),
        open_days=np.maximum(open_overdue, inv["days_overdue"].where(~paid, 0.0)),
        worst=worst,
    )
    g = inv.groupby("customer_id")
    out["invoices"] = g.size().reindex(index, fill_value=0)
    out["invoices_paid"] = g["paid"].sum().reindex(index, fill_value=0)
    out["invoices_paid_on_time"] = g["on_time"].sum().reindex(index, fill_value=0)
    out["max_open_days_overdue"] = g["open_days"].max().reindex(index, fill_value=0.0)
    out["avg_days_late"] = inv[paid].groupby("customer_id")["worst"].mean().reindex(index, fill_value=0.0)
    out["outstanding"] = inv[~paid].groupby("customer_id")["amount"].sum().reindex(index, fill_value=0.0)
    out["defaults"] = (inv["worst"] >= default_days).groupby(inv["customer_id"]).sum().reindex(index, fill_value=0)
