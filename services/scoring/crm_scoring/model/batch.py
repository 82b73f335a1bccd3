"""The scores of scores.py for many customers at once: each formula runs once over numpy arrays, not once per customer.

The values are those of the per-customer functions to the last bit: the same operations in the same order
(a component that is unknown adds an exact 0.0), `math.log1p` / `math.tanh` instead of numpy's SIMD versions
(which differ from them in the last bit), rounding as Python's correctly rounded `round` does (`np.round` does not).
The explanations are rendered from the same arrays by render.py. A test compares every record, explanations
included, with the per-customer functions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crm_scoring.model.scores import VALUE_MATRIX_CELLS

# ---------------------------------------------------------------- exact elementwise helpers


def clip01(values: np.ndarray) -> np.ndarray:
    """min(1.0, max(0.0, v)) with Python's semantics (NaN -> 0.0)."""
    low = np.where(values > 0.0, values, 0.0)
    return np.where(low < 1.0, low, 1.0)


def rounded_array(values, digits: int) -> np.ndarray:
    """Python's round(v, digits) of each value, vectorised.

    round() is the double nearest to M / 10^digits, M the exact value x 10^digits rounded half-even. IEEE division
    of the integer M by 10^digits is that nearest double, so only M can differ: the product x * 10^digits is itself
    rounded, and may land on the other side of a .5 boundary than the exact one. Values whose product lies within
    a few ulps of a boundary (and non-finite or huge ones) go through round() itself."""
    x = np.asarray(values, dtype=float)
    scale = 10.0**digits
    with np.errstate(invalid="ignore", over="ignore"):
        product = x * scale
        out = np.rint(product) / scale
        near_half = np.abs(product - np.floor(product) - 0.5) <= 4 * np.spacing(np.abs(product))
        unsure = ~np.isfinite(product) | (np.abs(product) >= 2.0**52) | near_half
    if unsure.any():
        out[unsure] = [round(v, digits) for v in x[unsure].tolist()]
    return out


def python_round(values, digits: int) -> list:
    """Python's round() of each value, as a list of floats."""
    return rounded_array(values, digits).tolist()


def _math(fn, values: np.ndarray) -> np.ndarray:
    return np.fromiter(map(fn, values.tolist()), dtype=float, count=values.size)


def log_scaled(values: np.ndarray, reference: float) -> np.ndarray:
    """scores.log_scaled for an array: 0 unless the value is positive."""
    values = np.asarray(values, dtype=float)
    out = np.zeros(values.size)
    if not reference or reference <= 0:
        return out
    positive = values > 0
    out[positive] = clip01(_math(math.log1p, values[positive]) / math.log1p(reference))
    return out


# ---------------------------------------------------------------- weighted means


@dataclass
class Weighted:
    """explain.weighted for every customer: the score (NaN when nothing is known), the raw components and the weights used."""

    score: np.ndarray
    components: dict[str, np.ndarray]
    known: dict[str, np.ndarray]
    used: dict[str, np.ndarray]  # NaN where the component is not used
    weights: dict[str, float]
    pattern: np.ndarray  # which weighted components are used, bit i = i-th key of `used`

    def has_score(self) -> np.ndarray:
        return ~np.isnan(self.score)

    def used_weights(self, pattern: int) -> dict[str, float]:
        """The weights actually used for one pattern, as explain.weighted computes and rounds them."""
        names = [k for i, k in enumerate(self.used) if pattern >> i & 1]
        total = sum(self.weights[k] for k in names)
        return {k: round(self.weights[k] / total, 4) for k in names}

def weighted(components: dict[str, np.ndarray], known: dict[str, np.ndarray], weights: dict[str, float], n: int) -> Weighted:
    """Weighted mean of the known components (each clipped to 0..1), unknown ones giving their weight to the others.

    Same arithmetic as explain.weighted: the total and the score are sums in component order starting at 0,
    where a component left out adds 0.0 (exact), so the floats are identical."""
    total = np.zeros(n)
    active = {}
    for k in components:
        if weights.get(k, 0) > 0:
            active[k] = known[k]
            total = total + np.where(known[k], weights[k], 0.0)
    any_known = np.zeros(n, dtype=bool)
    for mask in active.values():
        any_known |= mask
    valid = any_known & (total > 0)
    used: dict[str, np.ndarray] = {}
    pattern = np.zeros(n, dtype=np.int64)
    acc = np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for bit, (k, mask) in enumerate(active.items()):
            use = mask & valid
            share = np.where(use, weights[k] / total, np.nan)
            used[k] = share
            pattern |= use.astype(np.int64) << bit
            acc = acc + np.where(use, clip01(components[k]) * np.where(use, share, 0.0), 0.0)
    score = np.where(valid, rounded_array(100.0 * acc, 2), np.nan)
    return Weighted(score, components, known, used, dict(weights), pattern)


def _always(n: int) -> np.ndarray:
    return np.ones(n, dtype=bool)


# ---------------------------------------------------------------- value


@dataclass
class CurrentValue:
    w: Weighted
    revenue: np.ndarray
    margin: np.ndarray
    avg_order: np.ndarray
    months_active: np.ndarray

    @property
    def value(self) -> np.ndarray:
        return np.nan_to_num(self.w.score, nan=0.0)  # `score or 0.0`

def current_value(revenue, margin, avg_order, months_active, norms: dict, weights: dict) -> CurrentValue:
    n = len(revenue)
    components = {
        "revenue": log_scaled(revenue, norms["revenue"]),
        "margin": log_scaled(margin, norms["margin"]),
        "order_size": log_scaled(avg_order, norms["order_size"]),
        "continuity": clip01(months_active / 12),
    }
    known = {k: _always(n) for k in components}
    return CurrentValue(weighted(components, known, weights, n), revenue, margin, avg_order, months_active)


@dataclass
class PotentialValue:
    w: Weighted
    growth_rate: np.ndarray
    services_used: np.ndarray
    share_of_wallet: np.ndarray
    clv: np.ndarray
    service_types: int

    @property
    def value(self) -> np.ndarray:
        return np.nan_to_num(self.w.score, nan=0.0)

def potential_value(growth_rate, services_used, share_of_wallet, clv, norms: dict, weights: dict, service_types: int = 5) -> PotentialValue:
    n = len(growth_rate)
    growth_known = ~np.isnan(growth_rate)
    growth = np.full(n, np.nan)
    growth[growth_known] = 0.5 + 0.5 * _math(math.tanh, growth_rate[growth_known])
    wallet_known = ~np.isnan(share_of_wallet)
    components = {
        "growth": growth,
        "cross_sell": clip01((service_types - services_used) / service_types),
        "wallet_room": clip01(1 - share_of_wallet),
        "lifetime_value": log_scaled(clv, norms["clv"]),
    }
    known = {"growth": growth_known, "cross_sell": services_used > 0, "wallet_room": wallet_known, "lifetime_value": _always(n)}
    return PotentialValue(weighted(components, known, weights, n), growth_rate, services_used, share_of_wallet, clv, service_types)


# ---------------------------------------------------------------- satisfaction and loyalty


@dataclass
class Satisfaction:
    w: Weighted
    shipments: np.ndarray
    on_time_known: np.ndarray
    on_time: np.ndarray
    incidents: np.ndarray
    complaints: np.ndarray
    resolved_within_sla: np.ndarray
    survey_mean: np.ndarray

    @property
    def value(self) -> np.ndarray:
        """The score, NaN where nothing is known (None in a record)."""
        return self.w.score

def satisfaction(shipments, on_time_known, on_time, incidents, complaints, resolved_within_sla, survey_mean, weights: dict) -> Satisfaction:
    n = len(shipments)
    shipped = shipments != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        components = {
            "on_time": on_time / on_time_known,
            "damage_loss": clip01(1 - 10 * incidents / shipments),
            "complaints": np.where(shipped, clip01(1 - (100 * complaints / shipments) / 10), 0.0),
            "resolution": resolved_within_sla / complaints,
            "survey": (survey_mean - 1) / 4,
        }
    known = {"on_time": on_time_known != 0, "damage_loss": shipped, "complaints": shipped | (complaints != 0), "resolution": complaints != 0, "survey": ~np.isnan(survey_mean)}
    return Satisfaction(weighted(components, known, weights, n), shipments, on_time_known, on_time, incidents, complaints, resolved_within_sla, survey_mean)


def satisfaction_value(shipments, on_time_known, on_time, incidents, complaints, resolved_within_sla, survey_mean, weights: dict) -> np.ndarray:
    return satisfaction(shipments, on_time_known, on_time, incidents, complaints, resolved_within_sla, survey_mean, weights).value


@dataclass
class Loyalty:
    w: Weighted
    orders: np.ndarray
    tenure_days: np.ndarray
    gap_cv: np.ndarray
    share_of_wallet: np.ndarray
    satisfaction: np.ndarray

    @property
    def value(self) -> np.ndarray:
        return np.where(self.orders > 0, np.nan_to_num(self.w.score, nan=0.0), 0.0)

def loyalty(orders, tenure_days, gap_cv, share_of_wallet, satisfaction_score, weights: dict, tenure_full_days: int = 730) -> Loyalty:
    n = len(orders)
    with np.errstate(divide="ignore", invalid="ignore"):
        components = {
            "repeat_rate": (orders - 1) / orders,
            "tenure": clip01(tenure_days / tenure_full_days),
            "regularity": clip01(1 - gap_cv),
            "share_of_wallet": share_of_wallet,
            "satisfaction": satisfaction_score / 100,
        }
    buyer = orders > 0
    known = {"repeat_rate": buyer, "tenure": buyer, "regularity": buyer & ~np.isnan(gap_cv), "share_of_wallet": buyer & ~np.isnan(share_of_wallet),
             "satisfaction": buyer & ~np.isnan(satisfaction_score)}
    return Loyalty(weighted(components, known, weights, n), orders, tenure_days, gap_cv, share_of_wallet, satisfaction_score)


# ---------------------------------------------------------------- credit


@dataclass
class Credit:
    grade: np.ndarray  # object array of "A".."D"
    invoices: np.ndarray
    paid: np.ndarray
    paid_on_time: np.ndarray
    max_open_days_overdue: np.ndarray
    defaults: np.ndarray
    outstanding: np.ndarray
    credit_limit: np.ndarray
    on_time_rate: np.ndarray  # NaN when nothing was paid
    limit_use: np.ndarray  # NaN without a credit limit
    default_days: int

def credit_grade(invoices, paid, paid_on_time, max_open_days_overdue, defaults, outstanding, credit_limit, default_days: int = 90) -> Credit:
    """The rules of scores.credit_grade, first match wins: D, C, A, else B."""
    with np.errstate(divide="ignore", invalid="ignore"):
        on_time_rate = np.where(paid != 0, paid_on_time / paid, np.nan)
        has_limit = ~np.isnan(credit_limit) & (credit_limit != 0)
        limit_use = np.where(has_limit, outstanding / credit_limit, np.nan)
    rate_known, use_known = ~np.isnan(on_time_rate), ~np.isnan(limit_use)
    serious = (max_open_days_overdue >= default_days) | (defaults >= 2)
    low = (rate_known & (on_time_rate < 0.7)) | (max_open_days_overdue > 30) | (defaults >= 1) | (use_known & (limit_use > 1.0))
    high = (paid >= 3) & rate_known & (on_time_rate >= 0.95) & (max_open_days_overdue == 0) & (~use_known | (limit_use <= 0.8))
    grade = np.select([serious, low, high], ["D", "C", "A"], default="B").astype(object)
    return Credit(grade, invoices, paid, paid_on_time, max_open_days_overdue, defaults, outstanding, credit_limit, on_time_rate, limit_use, default_days)


# ---------------------------------------------------------------- churn

SIGNALS = ("ordering_frequency_dropped", "open_complaint_past_sla", "satisfaction_falling")


def churn_signals(order_days_recent, order_days_before, history_days, open_past_sla, satisfaction_all, satisfaction_recent, *,
                  drop_ratio: float = 0.5, satisfaction_drop: float = 15.0, recent_days: int = 90) -> dict[str, np.ndarray]:
    """scores.churn_signals as one boolean array per signal (in the order of SIGNALS)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_recent = order_days_before / history_days * recent_days
        dropped = (order_days_before >= 3) & (history_days > 0) & (order_days_recent < drop_ratio * expected_recent)
        falling = ~np.isnan(satisfaction_all) & ~np.isnan(satisfaction_recent) & (satisfaction_all - satisfaction_recent >= satisfaction_drop)
    return {"ordering_frequency_dropped": dropped, "open_complaint_past_sla": open_past_sla > 0, "satisfaction_falling": falling}


def risk_level(p_alive, signal_count, *, high: float, medium: float) -> np.ndarray:
    """scores.churn_risk's level; p_alive NaN = unknown."""
    known = ~np.isnan(p_alive)
    is_high = (known & (p_alive < high)) | (signal_count >= 2)
    is_medium = (known & (p_alive < medium)) | (signal_count >= 1)
    return np.select([is_high, is_medium], ["high", "medium"], default="low").astype(object)


# ---------------------------------------------------------------- RFM, matrices and tier


def _high(scores: np.ndarray, threshold: float) -> np.ndarray:
    return ~np.isnan(scores) & (scores >= threshold)


def _cells(first: np.ndarray, second: np.ndarray, names: tuple[str, str, str, str]) -> np.ndarray:
    """(True, True), (True, False), (False, True), (False, False) -> names."""
    return np.select([first & second, first & ~second, ~first & second], list(names[:3]), default=names[3]).astype(object)


def value_loyalty_cells(value, loyalty_score, threshold: float = 50) -> np.ndarray:
    return _cells(_high(value, threshold), _high(loyalty_score, threshold), ("keep_close", "win_loyalty", "grow_value", "low_priority"))


def credit_loyalty_cells(grades, loyalty_score, threshold: float = 50) -> np.ndarray:
    good = np.isin(grades, ["A", "B"])
    return _cells(good, _high(loyalty_score, threshold), ("gold", "to_develop", "to_watch", "to_drop"))


def value_matrix_cells(current, potential, threshold: float = 50) -> np.ndarray:
    return _cells(_high(current, threshold), _high(potential, threshold), VALUE_MATRIX_CELLS)


def tiers(abc_class: np.ndarray, risk: np.ndarray, orders_window: np.ndarray, flagged_key_account: np.ndarray) -> np.ndarray:
    """scores.tier for arrays (abc_class None where there is no population model)."""
    is_a = (abc_class == "A") | flagged_key_account
    small = np.array([c is None or c == "D" for c in abc_class.tolist()], dtype=bool) | (orders_window == 0)
    return np.select([is_a, risk == "high", small], ["key_account", "at_risk", "small"], default="ordinary").astype(object)

