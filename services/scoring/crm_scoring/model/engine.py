"""Population model (quintiles, ABC thresholds, BG/NBD and Gamma-Gamma parameters, normalisers) and
the scoring of feature rows with it. Pure: DataFrames in, dicts out."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crm_scoring.model import abc, bgnbd, gamma_gamma, rfm
from crm_scoring.model import scores as sc
from crm_scoring.model.features import RECENT_DAYS

DEFAULT_NORMS = {"revenue": 1_000_000.0, "margin": 150_000.0, "order_size": 10_000.0, "clv": 150_000.0}
SCORE_KEYS = ("current_value", "potential_value", "loyalty", "satisfaction", "churn_risk")


@dataclass
class PopulationModel:
    as_of_day: int
    abc_basis: str
    abc: abc.AbcThresholds
    rfm: dict[str, rfm.Breakpoints]
    bgnbd: bgnbd.BgNbdParams | None = None
    gamma_gamma: gamma_gamma.GammaGammaParams | None = None
    norms: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_NORMS))
    customers: int = 0
    bgnbd_log_likelihood: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of_day": self.as_of_day,
            "abc_basis": self.abc_basis,
            "abc": self.abc.as_dict(),
            "rfm": {k: v.as_dict() for k, v in self.rfm.items()},
            "bgnbd": None if self.bgnbd is None else self.bgnbd.as_dict(),
            "gamma_gamma": None if self.gamma_gamma is None else self.gamma_gamma.as_dict(),
            "norms": self.norms,
            "customers": self.customers,
            "bgnbd_log_likelihood": self.bgnbd_log_likelihood,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PopulationModel":
        return cls(
            as_of_day=d["as_of_day"],
            abc_basis=d["abc_basis"],
            abc=abc.AbcThresholds.from_dict(d["abc"]),
            rfm={k: rfm.Breakpoints.from_dict(v) for k, v in d["rfm"].items()},
            bgnbd=None if d.get("bgnbd") is None else bgnbd.BgNbdParams(**d["bgnbd"]),
            gamma_gamma=None if d.get("gamma_gamma") is None else gamma_gamma.GammaGammaParams(**d["gamma_gamma"]),
            norms=d.get("norms") or dict(DEFAULT_NORMS),
            customers=d.get("customers", 0),
            bgnbd_log_likelihood=d.get("bgnbd_log_likelihood"),
        )


def contribution(features: pd.DataFrame, basis: str) -> pd.Series:
    return features["margin_window" if basis == "margin" else "revenue_window"]


def _p95(series: pd.Series, default: float) -> float:
    positive = series[series > 0]
    return float(np.percentile(positive, 95)) if len(positive) else default


def fit_population(features: pd.DataFrame, settings, as_of_day: int, *, fit_models: bool = True) -> PopulationModel:
    buyers = features[features["orders_total"] > 0]
    recency = as_of_day - buyers["last_order_day"]
    cut = settings.abc_cutoffs
    model = PopulationModel(
        as_of_day=as_of_day,
        abc_basis=settings.abc_basis,
        abc=abc.thresholds(contribution(features, settings.abc_basis), cut.a, cut.b, cut.c),
        rfm={
            "r": rfm.breakpoints(recency, higher_is_better=False),
            "f": rfm.breakpoints(buyers["orders_window"]),
            "m": rfm.breakpoints(buyers["revenue_window"]),
        },
        customers=int(len(buyers)),
    )
    bg_params = None
    if fit_models and len(buyers) >= 20 and buyers["bg_x"].sum() > 0:
        fitted = bgnbd.fit(buyers["bg_x"], buyers["bg_t_x"], buyers["bg_T"])
        bg_params = fitted.params
        model.bgnbd = fitted.params
        model.bgnbd_log_likelihood = fitted.log_likelihood
        spenders = buyers[buyers["gg_x"] > 0]
        if len(spenders) >= 20:
            try:
                model.gamma_gamma = gamma_gamma.fit(spenders["gg_x"], spenders["gg_mean"]).params
            except ValueError:
                model.gamma_gamma = None
    clv = _clv(features, model, settings) if bg_params is not None else None
    model.norms = {
        "revenue": _p95(features["revenue_window"], DEFAULT_NORMS["revenue"]),
        "margin": _p95(features["margin_window"], DEFAULT_NORMS["margin"]),
        "order_size": _p95(features["avg_order_window"], DEFAULT_NORMS["order_size"]),
        "clv": _p95(clv[0], DEFAULT_NORMS["clv"]) if clv is not None else DEFAULT_NORMS["clv"],
    }
    return model


def _clv(features: pd.DataFrame, model: PopulationModel | None, settings) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """(clv, expected orders in the churn horizon, P(alive), expected margin per order) per customer."""
    orders_total = features["orders_total"].to_numpy(dtype=float)
    has = orders_total > 0
    per_day = features["orders_per_day"].to_numpy(dtype=float)
    own_margin = np.where(has, features["margin_total"].to_numpy(dtype=float) / np.maximum(orders_total, 1), 0.0)
    cost_per_order = np.where(has, (features["incident_loss"].to_numpy(dtype=float) + features["compensation"].to_numpy(dtype=float)) / np.maximum(orders_total, 1), 0.0)
    if model is not None and model.bgnbd is not None:
        x, t_x, T = (features[c].to_numpy(dtype=float) for c in ("bg_x", "bg_t_x", "bg_T"))
        alive = np.where(has, bgnbd.p_alive(model.bgnbd, x, t_x, T), np.nan)
        horizon = np.where(has, bgnbd.conditional_expected_purchases(model.bgnbd, settings.clv_horizon_days / 7, x, t_x, T) * per_day, 0.0)
        short = np.where(has, bgnbd.conditional_expected_purchases(model.bgnbd, settings.churn_horizon_days / 7, x, t_x, T) * per_day, np.nan)
    else:
        rate = features["orders_window"].to_numpy(dtype=float) / settings.window_days
        alive = np.full(len(features), np.nan)
        horizon = rate * settings.clv_horizon_days
        short = np.where(has, rate * settings.churn_horizon_days, np.nan)
    if model is not None and model.gamma_gamma is not None:
        gx = features["gg_x"].to_numpy(dtype=float)
        gm = features["gg_mean"].fillna(0.0).to_numpy(dtype=float)
        margin_per_order = np.where(gx > 0, gamma_gamma.expected_average_value(model.gamma_gamma, gx, gm), own_margin)
    else:
        margin_per_order = own_margin
    clv = horizon * (margin_per_order - cost_per_order)
    idx = features.index
    return pd.Series(clv, index=idx), pd.Series(short, index=idx), pd.Series(alive, index=idx), pd.Series(margin_per_order, index=idx)


def _none(value):
    if value is None:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
    except TypeError:
        pass
    return value


def score_features(features: pd.DataFrame, model: PopulationModel | None, settings, as_of_day: int) -> list[dict[str, Any]]:
    """One record per customer: every score, the matrices, the tier and a `detail` of explanations."""
    if features.empty:
        return []
    norms = model.norms if model is not None else DEFAULT_NORMS
    clv, expected90, alive, margin_per_order = _clv(features, model, settings)
    contrib = contribution(features, model.abc_basis if model is not None else settings.abc_basis).to_numpy(dtype=float)
    clv, expected90, alive, margin_per_order = (s.to_numpy(dtype=float) for s in (clv, expected90, alive, margin_per_order))
    records = []
    for i, (cid, row) in enumerate(zip(features.index, features.itertuples(index=False))):
        has_orders = row.orders_total > 0
        sow = _none(row.share_of_wallet)
        cv = sc.current_value(row.revenue_window, row.margin_window, row.avg_order_window, row.months_active, norms, settings.current_value_weights)
        pv = sc.potential_value(_none(row.growth_rate), row.services_used, sow, float(clv[i]), norms, settings.potential_value_weights)
        sat = sc.satisfaction(row.shipments, row.on_time_known, row.on_time_count, row.incidents, row.complaints, row.complaints_within_sla, _none(row.survey_mean), settings.satisfaction_weights)
        sat_recent = sc.satisfaction(row.shipments_recent, row.on_time_known_recent, row.on_time_count_recent, row.incidents_recent, row.complaints_recent, 0.0 if row.complaints_recent else 0.0,
                                     _none(row.survey_mean_recent), {**settings.satisfaction_weights, "resolution": 0.0}) if (row.shipments_recent or row.complaints_recent) else sc.Explained(None)
        tenure = (as_of_day - row.first_order_day) if has_orders else 0.0
        loy = sc.loyalty(row.orders_total, tenure, _none(row.gap_cv), sow, sat.value, settings.loyalty_weights, settings.tenure_full_days)
        credit = sc.credit_grade(row.invoices, row.invoices_paid, row.invoices_paid_on_time, float(row.max_open_days_overdue), int(row.defaults), float(row.outstanding), _none(row.credit_limit), settings.default_days)
        history_days = max(0.0, (as_of_day - RECENT_DAYS) - row.first_order_day) if has_orders else 0.0
        signals = sc.churn_signals(int(row.order_days_recent), int(row.order_days_before), history_days, int(row.open_past_sla), sat.value, sat_recent.value,
                                   drop_ratio=settings.frequency_drop_ratio, satisfaction_drop=settings.satisfaction_drop_points)
        p_alive = _none(float(alive[i])) if has_orders else None
        exp90 = _none(float(expected90[i])) if has_orders else None
        risk = sc.churn_risk(p_alive, exp90, signals, high=settings.p_alive_high_risk, medium=settings.p_alive_medium_risk) if has_orders else sc.Explained("low", {"signals": signals}, "low: no orders yet.")
        if not has_orders and signals:
            risk = sc.churn_risk(None, None, signals, high=settings.p_alive_high_risk, medium=settings.p_alive_medium_risk)
        record: dict[str, Any] = {"customer_id": cid}
        if model is not None:
            abc_class = abc.classify(float(contrib[i]), model.abc)
            if has_orders:
                r = rfm.score(float(as_of_day - row.last_order_day), model.rfm["r"])
                f = rfm.score(float(row.orders_window), model.rfm["f"])
                m = rfm.score(float(row.revenue_window), model.rfm["m"])
                segment = rfm.segment(r, f, m)
            else:
                r = f = m = None
                segment = None
        else:
            abc_class, r, f, m, segment = None, None, None, None, None
        tier = sc.tier(abc_class, risk.value, row.orders_window)
        loyalty_score = loy.value
        record.update(
            tier=tier.value,
            abc_class=abc_class,
            rfm_r=r,
            rfm_f=f,
            rfm_m=m,
            rfm_segment=segment,
            credit_grade=credit.value,
            churn_risk=risk.value,
            current_value=cv.value,
            potential_value=pv.value,
            loyalty=loyalty_score,
            satisfaction=sat.value,
            p_alive=None if p_alive is None else round(p_alive, 6),
            expected_orders_90d=None if exp90 is None else round(exp90, 4),
            clv_12m=round(float(clv[i]), 2),
            revenue_12m=round(float(row.revenue_window), 2),
            margin_12m=round(float(row.margin_window), 2),
            orders_12m=int(row.orders_window),
            contribution=round(float(contrib[i]), 2),
            value_loyalty=sc.value_loyalty_cell(cv.value, loyalty_score, settings.matrix_threshold),
            credit_loyalty=sc.credit_loyalty_cell(credit.value, loyalty_score, settings.matrix_threshold),
            value_matrix=sc.value_matrix_cell(cv.value, pv.value, settings.matrix_threshold),
        )
        abc_text = None
        if model is not None:
            abc_text = sc.Explained(
                abc_class,
                {"basis": model.abc_basis, "contribution_12m": record["contribution"], "thresholds": model.abc.as_dict()},
                f"Class {abc_class}: {model.abc_basis} over 12 months {record['contribution']:,.0f} against the thresholds A>={model.abc.a}, B>={model.abc.b}, C>={model.abc.c}.",
            ).as_dict()
        record["detail"] = {
            "current_value": cv.as_dict(),
            "potential_value": pv.as_dict(),
            "abc_class": abc_text,
            "rfm": None if r is None else {"value": {"r": r, "f": f, "m": m, "segment": segment},
                                            "inputs": {"recency_days": int(as_of_day - row.last_order_day), "orders_12m": int(row.orders_window), "revenue_12m": record["revenue_12m"]},
                                            "explanation": rfm.describe(r, f, m)},
            "loyalty": loy.as_dict(),
            "satisfaction": sat.as_dict(),
            "credit_grade": credit.as_dict(),
            "churn_risk": risk.as_dict(),
            "lifetime_value": {"value": record["clv_12m"], "inputs": {"expected_margin_per_order": round(float(margin_per_order[i]), 2),
                                                                      "model": "bgnbd+gamma_gamma" if model is not None and model.bgnbd is not None else "run_rate"},
                               "explanation": "Expected orders in 12 months x expected margin per order, less the historical cost to serve (damage, loss, compensation) per order."},
            "tier": tier.as_dict(),
            "matrices": {"value_loyalty": record["value_loyalty"], "credit_loyalty": record["credit_loyalty"], "current_potential": record["value_matrix"]},
        }
        records.append(record)
    return records


def numeric_scores(record: dict[str, Any]) -> dict[str, float]:
    """The 0-100 scores CustomerScored carries (and the step applies to)."""
    out = {}
    for key in ("current_value", "potential_value", "loyalty", "satisfaction"):
        if record.get(key) is not None:
            out[key] = float(record[key])
    if record.get("p_alive") is not None:
        out["p_alive"] = round(100 * float(record["p_alive"]), 2)
    return out
