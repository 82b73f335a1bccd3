"""The scores of scores.py for many customers at once: each formula runs once over numpy arrays, not once per customer.

The values are those of the per-customer functions to the last bit: the same operations in the same order
(a component that is unknown adds an exact 0.0), `math.log1p` / `math.tanh` instead of numpy's SIMD versions
(which differ from them in the last bit), Python's correctly rounded `round` instead of `np.round`.
Explanations (inputs and sentences) are rendered from the same arrays only when asked, for a slice of the
customers at a time (`explain(start, stop)`), so a whole population is held as arrays, not as dicts.
A test compares every record, explanations included, with the per-customer functions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crm_scoring.model.scores import credit_reasons

# ---------------------------------------------------------------- exact elementwise helpers


def clip01(values: np.ndarray) -> np.ndarray:
    """min(1.0, max(0.0, v)) with Python's semantics (NaN -> 0.0)."""
    low = np.where(values > 0.0, values, 0.0)
    return np.where(low < 1.0, low, 1.0)


def python_round(values: np.ndarray, digits: int) -> list:
    """Python's round() of each value (correctly rounded; np.round is not), as a list of floats."""
    return [round(v, digits) for v in np.asarray(values, dtype=float).tolist()]


def rounded_array(values: np.ndarray, digits: int) -> np.ndarray:
    return np.array(python_round(values, digits), dtype=float)


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


def none_if(values: list, unknown) -> list:
    """Python values with None where `unknown` is true."""
    return [None if u else v for v, u in zip(values, np.asarray(unknown, dtype=bool).tolist())]


# ---------------------------------------------------------------- weighted means


@dataclass
class Weighted:
    """explain.weighted for every customer: the score (NaN when nothing is known), the raw components and the weights used."""

    score: np.ndarray
    components: dict[str, np.ndarray]
    known: dict[str, np.ndarray]
    used: dict[str, np.ndarray]  # NaN where the component is not used

    def has_score(self) -> np.ndarray:
        return ~np.isnan(self.score)

    def component_dicts(self, start: int, stop: int) -> list[dict]:
        """{name: round(component, 4) or None} per customer, in the order of the components."""
        columns = [none_if(python_round(v[start:stop], 4), ~self.known[k][start:stop]) for k, v in self.components.items()]
        names = list(self.components)
        return [dict(zip(names, values)) for values in zip(*columns)] if columns else [{} for _ in range(stop - start)]

    def weight_dicts(self, start: int, stop: int) -> list[dict]:
        """{name: round(weight, 4)} of the components actually used, per customer."""
        names = [k for k in self.used]
        columns = [python_round(self.used[k][start:stop], 4) for k in names]
        usable = [~np.isnan(self.used[k][start:stop]) for k in names]
        flags = [u.tolist() for u in usable]
        out = []
        for values, used in zip(zip(*columns), zip(*flags)):
            out.append({k: v for k, v, u in zip(names, values, used) if u})
        return out if names else [{} for _ in range(stop - start)]


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
    acc = np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, mask in active.items():
            use = mask & valid
            share = np.where(use, weights[k] / total, np.nan)
            used[k] = share
            acc = acc + np.where(use, clip01(components[k]) * np.where(use, share, 0.0), 0.0)
    score = np.where(valid, rounded_array(100.0 * acc, 2), np.nan)
    return Weighted(score, components, known, used)


def _always(n: int) -> np.ndarray:
    return np.ones(n, dtype=bool)


def _fmt(spec: str, values) -> list[str]:
    return [format(v, spec) for v in values]


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

    def explain(self, start: int, stop: int) -> list[dict]:
        score = self.value[start:stop].tolist()
        revenue, margin, avg = (a[start:stop].tolist() for a in (self.revenue, self.margin, self.avg_order))
        months = self.months_active[start:stop].tolist()
        out = []
        for s, r, m, a, mo, comps, used in zip(score, revenue, margin, avg, months, self.w.component_dicts(start, stop), self.w.weight_dicts(start, stop)):
            out.append({
                "value": s,
                "inputs": {"revenue_12m": round(r, 2), "margin_12m": round(m, 2), "avg_order": round(a, 2), "months_with_orders": mo, "components": comps, "weights": used},
                "explanation": f"{s:.0f}/100: revenue {r:,.0f} and margin {m:,.0f} over 12 months, average order {a:,.0f}, orders in {mo} of the last 12 months.",
            })
        return out


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

    def explain(self, start: int, stop: int) -> list[dict]:
        score = self.value[start:stop].tolist()
        growth_known = self.w.known["growth"][start:stop].tolist()
        growth = self.growth_rate[start:stop].tolist()
        services = self.services_used[start:stop].tolist()
        sow = none_if(self.share_of_wallet[start:stop].tolist(), np.isnan(self.share_of_wallet[start:stop]))
        clv = self.clv[start:stop].tolist()
        types = self.service_types
        out = []
        for s, gk, g, su, w, c, comps, used in zip(score, growth_known, growth, services, sow, clv, self.w.component_dicts(start, stop), self.w.weight_dicts(start, stop)):
            trend = f"monthly revenue trend {g:+.0%} a year" if gk else "no revenue trend yet"
            wallet = "share of wallet unknown" if w is None else f"declared share of wallet {w:.0%}"
            out.append({
                "value": s,
                "inputs": {"growth_rate": round(g, 4) if gk else None, "services_used": su, "share_of_wallet": w, "clv_12m": round(c, 2), "components": comps, "weights": used},
                "explanation": f"{s:.0f}/100: {trend}, {su} of {types} service types used, {wallet}, expected 12-month margin {c:,.0f}.",
            })
        return out


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

    def explain(self, start: int, stop: int) -> list[dict]:
        sl = slice(start, stop)
        score = self.w.score[sl].tolist()
        known = self.w.has_score()[sl].tolist()
        shipments, otk, on_time, incidents, complaints, resolved = (a[sl].tolist() for a in (self.shipments, self.on_time_known, self.on_time, self.incidents, self.complaints, self.resolved_within_sla))
        on_time_rate = self.w.components["on_time"][sl].tolist()
        on_time_rate_known = self.w.known["on_time"][sl].tolist()
        survey_known = self.w.known["survey"][sl].tolist()
        survey = self.survey_mean[sl].tolist()
        out = []
        rows = zip(score, known, shipments, otk, on_time, incidents, complaints, resolved, on_time_rate, on_time_rate_known, survey, survey_known,
                   self.w.component_dicts(start, stop), self.w.weight_dicts(start, stop))
        for s, k, sh, ok, ot, inc, co, res, rate, rate_known, sv, sv_known, comps, used in rows:
            inputs = {"shipments": sh, "on_time_known": ok, "on_time": ot, "damaged_or_lost": inc, "complaints": co, "resolved_within_sla": res,
                      "survey_mean": round(sv, 3) if sv_known else None, "components": comps, "weights": used}
            if not k:
                out.append({"value": None, "inputs": inputs, "explanation": "No deliveries, complaints or surveys yet."})
                continue
            per100 = 100 * co / sh if sh else 0.0
            out.append({
                "value": s,
                "inputs": inputs,
                "explanation": f"{s:.0f}/100: " + (f"{rate:.0%} on time" if rate_known else "on-time rate unknown")
                + f", {inc} damaged or lost of {sh} shipments, {per100:.1f} complaints per 100 shipments"
                + ("" if not sv_known else f", survey average {sv:.1f}/5") + ".",
            })
        return out


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

    def explain(self, start: int, stop: int) -> list[dict]:
        sl = slice(start, stop)
        score = self.value[sl].tolist()
        orders, tenure, gap_cv = self.orders[sl].tolist(), self.tenure_days[sl].tolist(), self.gap_cv[sl].tolist()
        sow = none_if(self.share_of_wallet[sl].tolist(), np.isnan(self.share_of_wallet[sl]))
        sat = none_if(self.satisfaction[sl].tolist(), np.isnan(self.satisfaction[sl]))
        repeat = self.w.components["repeat_rate"][sl].tolist()
        regularity = self.w.components["regularity"][sl].tolist()
        regular_known = self.w.known["regularity"][sl].tolist()
        out = []
        rows = zip(score, orders, tenure, gap_cv, sow, sat, repeat, regularity, regular_known, self.w.component_dicts(start, stop), self.w.weight_dicts(start, stop))
        for s, o, t, cv, w, st, rep, reg, reg_known, comps, used in rows:
            if o <= 0:
                out.append({"value": 0.0, "inputs": {"orders": 0}, "explanation": "0/100: no orders yet."})
                continue
            out.append({
                "value": s,
                "inputs": {"orders": o, "tenure_days": round(t, 1), "gap_cv": round(cv, 4) if reg_known else None, "share_of_wallet": w, "satisfaction": st,
                           "components": comps, "weights": used},
                "explanation": f"{s:.0f}/100: {o} orders ({rep:.0%} repeat), customer for {t:.0f} days, "
                + (f"regularity {reg:.2f}" if reg_known else "ordering regularity unknown")
                + ("" if st is None else f", satisfaction {st:.0f}")
                + ". Unknown parts are left out and their weight shared by the others.",
            })
        return out


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

    def explain(self, start: int, stop: int) -> list[dict]:
        sl = slice(start, stop)
        grades = self.grade[sl].tolist()
        invoices, paid, on_time, overdue, defaults, outstanding = (a[sl].tolist() for a in (self.invoices, self.paid, self.paid_on_time, self.max_open_days_overdue, self.defaults, self.outstanding))
        limit = none_if(self.credit_limit[sl].tolist(), np.isnan(self.credit_limit[sl]))
        rate = none_if(self.on_time_rate[sl].tolist(), np.isnan(self.on_time_rate[sl]))
        use = none_if(self.limit_use[sl].tolist(), np.isnan(self.limit_use[sl]))
        days = self.default_days
        out = []
        for g, inv, p, pot, od, d, outst, lim, r, u in zip(grades, invoices, paid, on_time, overdue, defaults, outstanding, limit, rate, use):
            inputs = {"invoices": inv, "paid": p, "paid_on_time": pot, "on_time_rate": None if r is None else round(r, 4), "max_open_days_overdue": od, "defaults": d,
                      "outstanding": round(outst, 2), "credit_limit": lim, "limit_use": None if u is None else round(u, 4)}
            if g == "D":
                text = f"D (serious default): an invoice {od:.0f} days overdue or {d} defaults (>= {days} days late)."
            elif g == "C":
                text = "C (low): " + credit_reasons(r, od, d, u)
            elif g == "A":
                text = f"A (high): {p} invoices paid, {r:.0%} on time, nothing overdue."
            elif inv == 0:
                text = "B (ordinary): no invoices yet."
            else:
                text = "B (ordinary): " + credit_reasons(r, od, d, u)
            out.append({"value": g, "inputs": inputs, "explanation": text})
        return out


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


def signal_lists(signals: dict[str, np.ndarray], start: int, stop: int) -> list[list[str]]:
    flags = [signals[name][start:stop].tolist() for name in SIGNALS]
    return [[name for name, on in zip(SIGNALS, row) if on] for row in zip(*flags)]


def risk_level(p_alive, signal_count, *, high: float, medium: float) -> np.ndarray:
    """scores.churn_risk's level; p_alive NaN = unknown."""
    known = ~np.isnan(p_alive)
    is_high = (known & (p_alive < high)) | (signal_count >= 2)
    is_medium = (known & (p_alive < medium)) | (signal_count >= 1)
    return np.select([is_high, is_medium], ["high", "medium"], default="low").astype(object)


def risk_explanations(levels: list, p_alive: list, expected: list, signals: list[list[str]], with_model: list) -> list[dict]:
    """scores.churn_risk's inputs and sentence (with_model False: the no-orders form without a risk model)."""
    out = []
    for level, p, e, sig, full in zip(levels, p_alive, expected, signals, with_model):
        if not full:
            out.append({"value": level, "inputs": {"signals": sig}, "explanation": "low: no orders yet."})
            continue
        model = "no population model yet" if p is None else f"P(alive) {p:.2f}, {e:.1f} orders expected in 90 days"
        out.append({
            "value": level,
            "inputs": {"p_alive": None if p is None else round(p, 4), "expected_orders_90d": None if e is None else round(e, 3), "signals": sig},
            "explanation": f"{level}: {model}" + (f"; signals: {', '.join(s.replace('_', ' ') for s in sig)}" if sig else "; no rule signals") + ".",
        })
    return out


# ---------------------------------------------------------------- RFM, matrices and tier


def segments(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """rfm.segment for arrays of scores: first matching rule wins."""
    fm = (f + m) / 2
    rules = [(r >= 4) & (fm >= 4), (r <= 2) & (fm >= 4.5), (r <= 2) & (fm >= 3), (r >= 3) & (fm >= 3), r >= 4, r == 3, r == 2]
    names = ["champions", "cant_lose", "at_risk", "loyal", "potential_loyalist", "need_attention", "hibernating"]
    return np.select(rules, names, default="lost").astype(object)


def describe_rfm(r: int, f: int, m: int, segment: str) -> str:
    return f"R{r} F{f} M{m} ({segment.replace('_', ' ')})"


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
    return _cells(_high(current, threshold), _high(potential, threshold), ("important", "big", "medium", "small"))


def tiers(abc_class: np.ndarray, risk: np.ndarray, orders_window: np.ndarray) -> np.ndarray:
    """scores.tier for arrays (abc_class None where there is no population model)."""
    is_a = abc_class == "A"
    small = np.array([c is None or c == "D" for c in abc_class.tolist()], dtype=bool) | (orders_window == 0)
    return np.select([is_a, risk == "high", small], ["key_account", "at_risk", "small"], default="ordinary").astype(object)


def tier_explanations(tier_values: list, abc_class: list, risk: list, orders_window: list) -> list[dict]:
    texts = {"key_account": "Key account: in class A, the top contributors.", "at_risk": "At risk: high churn risk.", "small": "Small: class D or no orders in the last 12 months."}
    out = []
    for t, c, r, o in zip(tier_values, abc_class, risk, orders_window):
        out.append({"value": t, "inputs": {"abc_class": c, "churn_risk": r, "orders_12m": o}, "explanation": texts.get(t) or f"Ordinary: class {c}."})
    return out
