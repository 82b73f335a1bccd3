"""Population model (quintiles, ABC thresholds, BG/NBD and Gamma-Gamma parameters, normalisers) and
the scoring of feature rows with it. Pure: DataFrames in, dicts out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crm_scoring.model import abc, bgnbd, exact, gamma_gamma, rfm, scores
from crm_scoring.model.features import RECENT_DAYS
from crm_scoring.model.render import fill, json_values

if TYPE_CHECKING:
    from crm_scoring.settings import ScoringSettings

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
    def from_dict(cls, d: dict[str, Any]) -> PopulationModel:
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


def fit_population(features: pd.DataFrame, settings: ScoringSettings, as_of_day: int, *, fit_models: bool = True) -> PopulationModel:
    buyers = features[features["orders_total"] > 0]
    active = buyers[buyers["orders_window"] > 0]  # F and M are ranked among the customers active in the window
    recency = as_of_day - buyers["last_order_day"]
    cut = settings.abc_cutoffs
    model = PopulationModel(
        as_of_day=as_of_day,
        abc_basis=settings.abc_basis,
        abc=abc.thresholds(contribution(features, settings.abc_basis), cut.a, cut.b, cut.c),
        rfm={
            "r": rfm.breakpoints(recency, higher_is_better=False),
            "f": rfm.breakpoints(rfm.frequency_key(active["orders_window"], active["revenue_window"])),
            "m": rfm.breakpoints(active["revenue_window"]),
        },
        customers=int(len(buyers)),
    )
    bg_params = None
    if fit_models and len(buyers) >= 20 and buyers["bg_x"].sum() > 0:
        fitted = bgnbd.fit(buyers["bg_x"], buyers["bg_t_x"], buyers["bg_T"])
        bg_params = fitted.params
        model.bgnbd = fitted.params
        model.bgnbd_log_likelihood = fitted.log_likelihood
        spenders = buyers[(buyers["gg_x"] > 0) & (buyers["gg_mean"] > 0)]
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


def _clv(
    features: pd.DataFrame, model: PopulationModel | None, settings: ScoringSettings
) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """(clv, expected orders in the churn horizon, P(alive), expected margin per transaction) per customer.

    A transaction is an order day (BG/NBD's unit). CLV = E[transactions in the CLV horizon] x (E[margin per transaction]
    - cost to serve per transaction); Gamma-Gamma gives the expected margin from the repeat transactions (x >= 1 with a
    positive mean), the population mean for customers without repeat transactions, and a customer whose repeat
    transactions lost money keeps that own mean."""
    orders_total = features["orders_total"].to_numpy(dtype=float)
    order_days = features["order_days"].to_numpy(dtype=float)
    has = orders_total > 0
    per_day = features["orders_per_day"].to_numpy(dtype=float)
    own_margin = np.where(has, features["margin_total"].to_numpy(dtype=float) / np.maximum(order_days, 1), 0.0)
    cost_per_day = np.where(
        has,
        (features["incident_loss"].to_numpy(dtype=float) + features["compensation"].to_numpy(dtype=float)) / np.maximum(order_days, 1),
        0.0,
    )
    if model is not None and model.bgnbd is not None:
        x, t_x, T = (features[c].to_numpy(dtype=float) for c in ("bg_x", "bg_t_x", "bg_T"))
        alive = np.where(has, bgnbd.p_alive(model.bgnbd, x, t_x, T), np.nan)
        horizon = np.where(has, bgnbd.conditional_expected_purchases(model.bgnbd, settings.clv_horizon_days / 7, x, t_x, T), 0.0)
        short = np.where(
            has, bgnbd.conditional_expected_purchases(model.bgnbd, settings.churn_horizon_days / 7, x, t_x, T) * per_day, np.nan
        )
    else:
        rate = features["orders_window"].to_numpy(dtype=float) / settings.window_days  # orders a day, run rate
        alive = np.full(len(features), np.nan)
        horizon = rate * settings.clv_horizon_days / per_day  # in transactions (order days)
        short = np.where(has, rate * settings.churn_horizon_days, np.nan)
    margin_per_day = own_margin
    if model is not None and model.gamma_gamma is not None:
        gx = features["gg_x"].to_numpy(dtype=float)
        gm = features["gg_mean"].to_numpy(dtype=float)
        modelled = has & ((gx == 0) | (gm > 0))
        margin_per_day = np.where(
            modelled, gamma_gamma.expected_average_value(model.gamma_gamma, gx, np.where(gx > 0, gm, 0.0)), own_margin
        )
    clv = horizon * (margin_per_day - cost_per_day)
    idx = features.index
    return pd.Series(clv, index=idx), pd.Series(short, index=idx), pd.Series(alive, index=idx), pd.Series(margin_per_day, index=idx)


@dataclass
class ScoreBatch:
    """The scores of many customers as arrays (one pass of each formula over all of them); `records(start, stop)`
    renders the stored records, explanations included, for a slice of them."""

    customer_ids: list[str]
    columns: dict[str, np.ndarray]  # the record's scalar fields, NaN / None where a record has None
    current: scores.CurrentValue
    potential: scores.PotentialValue
    satisfaction: scores.Satisfaction
    loyalty: scores.Loyalty
    credit: scores.Credit
    signals: dict[str, np.ndarray]
    risk_with_model: np.ndarray  # False: a customer without orders and without signals ("low: no orders yet.")
    recency_days: np.ndarray
    margin_per_order_day: np.ndarray
    model: PopulationModel | None

    def __len__(self) -> int:
        return len(self.customer_ids)

    def records(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """The records of customers start..stop: every score, the matrices and the tier, `detail_json` (the explanations
        as the stored JSON text), `tier_reason` and `signals` (what the announcements carry)."""
        stop = len(self) if stop is None else min(stop, len(self))
        if start >= stop:
            return []
        sl = slice(start, stop)
        col = {k: self.columns[k][sl].tolist() for k in RECORD_FIELDS}
        signal_code = scores.signal_codes(self.signals, sl)
        signals = scores.signal_lists(signal_code)
        tier_json, tier_reasons = scores.tier_explanations(
            col["tier"], col["abc_class"], self.columns["key_account_flag"][sl].tolist(), col["churn_risk"], col["orders_12m"]
        )
        revenue_json, orders_json, clv_json = (json_values(col[k]) for k in ("revenue_12m", "orders_12m", "clv_12m"))
        clv_model = "bgnbd+gamma_gamma" if self.model is not None and self.model.bgnbd is not None else "run_rate"
        details = fill(
            scores.DETAIL,
            self.current.explain(sl),
            self.potential.explain(sl),
            scores.abc_explanations(col["abc_class"], col["contribution"], json_values(col["contribution"]), self.model),
            scores.rfm_explanations(
                col["rfm_r"], col["rfm_f"], col["rfm_m"], col["rfm_segment"], self.recency_days[sl].tolist(), orders_json, revenue_json
            ),
            self.loyalty.explain(sl),
            self.satisfaction.explain(sl),
            self.credit.explain(sl),
            scores.churn_risk_explanations(
                self.columns["churn_risk"], self.columns["p_alive_raw"], self.columns["expected_raw"], signal_code, self.risk_with_model, sl
            ),
            scores.lifetime_value_explanations(clv_json, self.margin_per_order_day[sl], clv_model),
            tier_json,
            scores.matrices_explanations(col["value_loyalty"], col["credit_loyalty"], col["value_matrix"]),
        )
        keys = ("customer_id", *RECORD_FIELDS, "detail_json", "tier_reason", "signals")
        return [
            dict(zip(keys, row)) for row in zip(self.customer_ids[sl], *(col[k] for k in RECORD_FIELDS), details, tier_reasons, signals)
        ]


RECORD_FIELDS = (
    "tier",
    "abc_class",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_segment",
    "credit_grade",
    "churn_risk",
    "current_value",
    "potential_value",
    "loyalty",
    "satisfaction",
    "p_alive",
    "expected_orders_90d",
    "clv_12m",
    "revenue_12m",
    "margin_12m",
    "orders_12m",
    "contribution",
    "value_loyalty",
    "credit_loyalty",
    "value_matrix",
)


def _column(features: pd.DataFrame, name: str) -> np.ndarray:
    return features[name].to_numpy()


def _optional(values: np.ndarray, known: np.ndarray, digits: int | None = None) -> np.ndarray:
    """An object array: the (Python-rounded) value where known, None elsewhere."""
    out = np.full(values.size, None, dtype=object)
    picked = values[known]
    out[known] = exact.python_round(picked, digits) if digits is not None else picked.tolist()
    return out


def score_batch(features: pd.DataFrame, model: PopulationModel | None, settings: ScoringSettings, as_of_day: int) -> ScoreBatch:
    """Every score of every customer of `features`, one numpy pass per formula (crm_scoring.model.scores)."""
    f = {name: _column(features, name) for name in features.columns}
    norms = model.norms if model is not None else DEFAULT_NORMS
    clv, expected90, alive, margin_per_order_day = (s.to_numpy(dtype=float) for s in _clv(features, model, settings))
    contrib = contribution(features, model.abc_basis if model is not None else settings.abc_basis).to_numpy(dtype=float)
    has_orders = f["orders_total"] > 0
    sow = f["share_of_wallet"].astype(float)

    current = scores.current_value(
        f["revenue_window"], f["margin_window"], f["avg_order_window"], f["months_active"], norms, settings.current_value_weights
    )
    potential = scores.potential_value(
        f["growth_rate"].astype(float), f["services_used"], sow, clv, norms, settings.potential_value_weights
    )
    sat = scores.satisfaction(
        f["shipments"],
        f["on_time_known"],
        f["on_time_count"],
        f["incidents"],
        f["complaints"],
        f["complaints_within_sla"],
        f["survey_mean"].astype(float),
        f["service_level_months"],
        f["service_level_breaches"],
        settings.satisfaction_weights,
    )
    sat_recent = _recent_satisfaction(f, settings)
    first_day = f["first_order_day"].astype(float)
    tenure = np.where(has_orders, as_of_day - first_day, 0.0)
    loy = scores.loyalty(
        f["orders_total"], tenure, f["gap_cv"].astype(float), sow, sat.value, settings.loyalty_weights, settings.tenure_full_days
    )
    credit = scores.credit_grade(
        f["invoices"],
        f["invoices_paid"],
        f["invoices_paid_on_time"],
        f["max_open_days_overdue"].astype(float),
        f["defaults"],
        f["outstanding"].astype(float),
        f["credit_limit"].astype(float),
        settings.default_days,
    )
    history_days = (as_of_day - RECENT_DAYS) - first_day
    history_days = np.where(has_orders & (history_days > 0.0), history_days, 0.0)
    signals = scores.churn_signals(
        f["order_days_recent"],
        f["order_days_before"],
        history_days,
        f["open_past_sla"],
        sat.value,
        sat_recent,
        f["service_level_breaches_recent"],
        drop_ratio=settings.frequency_drop_ratio,
        satisfaction_drop=settings.satisfaction_drop_points,
    )
    signal_count = np.sum([s.astype(int) for s in signals.values()], axis=0)
    p_alive = np.where(has_orders, alive, np.nan)
    expected = np.where(has_orders, expected90, np.nan)
    with_risk_model = has_orders | (signal_count > 0)  # else "low: no orders yet."
    risk = np.where(
        with_risk_model,
        scores.risk_level(p_alive, signal_count, high=settings.p_alive_high_risk, medium=settings.p_alive_medium_risk),
        "low",
    ).astype(object)
    abc_class, rfm_r, rfm_f, rfm_m, segment = _abc_and_rfm(f, contrib, model, has_orders, as_of_day)
    orders_window = f["orders_window"]
    tier = scores.tiers(abc_class, risk, orders_window, f["key_account_flag"].astype(bool))
    threshold = settings.matrix_threshold
    columns = {
        "tier": tier,
        "abc_class": abc_class,
        "rfm_r": rfm_r,
        "rfm_f": rfm_f,
        "rfm_m": rfm_m,
        "rfm_segment": segment,
        "credit_grade": credit.grade,
        "churn_risk": risk,
        "current_value": current.value,
        "potential_value": potential.value,
        "loyalty": loy.value,
        "satisfaction": _optional(sat.value, sat.w.has_score()),
        "p_alive": _optional(p_alive, ~np.isnan(p_alive), 6),
        "expected_orders_90d": _optional(expected, ~np.isnan(expected), 4),
        "clv_12m": exact.rounded_array(clv, 2),
        "revenue_12m": exact.rounded_array(f["revenue_window"].astype(float), 2),
        "margin_12m": exact.rounded_array(f["margin_window"].astype(float), 2),
        "orders_12m": orders_window.astype(np.int64),
        "contribution": exact.rounded_array(contrib, 2),
        "value_loyalty": scores.value_loyalty_cells(current.value, loy.value, threshold),
        "credit_loyalty": scores.credit_loyalty_cells(credit.grade, loy.value, threshold),
        "value_matrix": scores.value_matrix_cells(current.value, potential.value, threshold),
        "key_account_flag": f["key_account_flag"].astype(bool),
        "p_alive_raw": p_alive,
        "expected_raw": expected,
    }
    recency_days = np.where(has_orders, as_of_day - np.nan_to_num(f["last_order_day"].astype(float)), 0).astype(np.int64)
    return ScoreBatch(
        list(features.index),
        columns,
        current,
        potential,
        sat,
        loy,
        credit,
        signals,
        with_risk_model,
        recency_days,
        margin_per_order_day,
        model,
    )


def _recent_satisfaction(f: dict[str, np.ndarray], settings: ScoringSettings) -> np.ndarray:
    """Satisfaction over the last 90 days (no resolution component), NaN without recent shipments or complaints."""
    recent_known = (f["shipments_recent"] != 0) | (f["complaints_recent"] != 0)
    recent = scores.satisfaction(
        f["shipments_recent"],
        f["on_time_known_recent"],
        f["on_time_count_recent"],
        f["incidents_recent"],
        f["complaints_recent"],
        np.zeros(len(recent_known)),
        f["survey_mean_recent"].astype(float),
        f["service_level_months_recent"],
        f["service_level_breaches_recent"],
        {**settings.satisfaction_weights, "resolution": 0.0},
    )
    return np.where(recent_known, recent.value, np.nan)


def _abc_classes(contrib: np.ndarray, model: PopulationModel | None) -> np.ndarray:
    """ABC class per customer (None without a population model)."""
    if model is None:
        return np.full(len(contrib), None, dtype=object)
    classes: np.ndarray = abc.classify_many(contrib, model.abc)
    return classes


def agreed_tiers(features: pd.DataFrame, model: PopulationModel | None, settings: ScoringSettings) -> np.ndarray:
    """Each customer's commercial tier (scores.commercial_tiers: the tier without churn risk), the tier whose
    service-level targets the customer agreed; the same class and order count the scores' tier is built from."""
    contrib = contribution(features, model.abc_basis if model is not None else settings.abc_basis).to_numpy(dtype=float)
    return scores.commercial_tiers(
        _abc_classes(contrib, model), features["orders_window"].to_numpy(), features["key_account_flag"].to_numpy(dtype=bool)
    )


def _abc_and_rfm(
    f: dict[str, np.ndarray], contrib: np.ndarray, model: PopulationModel | None, has_orders: np.ndarray, as_of_day: int
) -> tuple[np.ndarray, ...]:
    """ABC class, R, F, M and segment (None without a population model; RFM None for customers without orders; F = M = 0
    for customers without an order in the window)."""
    if model is None:
        nothing = np.full(len(contrib), None, dtype=object)
        return nothing, nothing, nothing, nothing, nothing
    abc_class = _abc_classes(contrib, model)
    r = rfm.score_many(as_of_day - f["last_order_day"].astype(float), model.rfm["r"])
    active = f["orders_window"] > 0
    fq = rfm.active_scores(rfm.frequency_key(f["orders_window"], f["revenue_window"]), active, model.rfm["f"])
    m = rfm.active_scores(f["revenue_window"].astype(float), active, model.rfm["m"])
    segment = np.where(has_orders, rfm.segment_many(r, fq, m), None)  # type: ignore[call-overload]  # None: an object array's scalar
    return (abc_class, *(_optional(s, has_orders) for s in (r, fq, m)), segment)


def score_features(
    features: pd.DataFrame, model: PopulationModel | None, settings: ScoringSettings, as_of_day: int
) -> list[dict[str, Any]]:
    """One record per customer (ScoreBatch.records)."""
    return score_batch(features, model, settings, as_of_day).records()


def numeric_scores(record: dict[str, Any]) -> dict[str, float]:
    """The 0-100 scores CustomerScored carries (and the step applies to)."""
    out = {}
    for key in ("current_value", "potential_value", "loyalty", "satisfaction"):
        if record.get(key) is not None:
            out[key] = float(record[key])
    if record.get("p_alive") is not None:
        out["p_alive"] = round(100 * float(record["p_alive"]), 2)
    return out
