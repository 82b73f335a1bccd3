"""The scores: each formula once, over numpy arrays of all the customers scored together, and beside it the
explanation (inputs and a sentence) rendered from the values the formula computed.

Formulas, weights and thresholds are documented in docs/scoring.md. A rule changes here and nowhere else.
The numbers are those of plain per-customer Python arithmetic to the last bit (crm_scoring.model.exact, and
a component that is unknown adds an exact 0.0); the tests keep such a per-customer version as the oracle
(tests/scoring_oracle.py) and compare every value and every explanation, byte for byte, with it.

Each score's `explain(sl)` gives the JSON text of {"value", "inputs", "explanation"} for the customers of a
slice, as orjson writes that dict (crm_scoring.model.render fills it column by column).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import orjson

from crm_scoring.model import exact
from crm_scoring.model.render import fill, json_numbers, json_strings, json_values, nullable

if TYPE_CHECKING:
    from crm_scoring.model.engine import PopulationModel

# ---------------------------------------------------------------- weighted means


def log_scaled(values: np.ndarray, reference: float) -> np.ndarray:
    """0 at 0 (and below), 1 at the population's 95th percentile (or above), logarithmic in between."""
    values = np.asarray(values, dtype=float)
    out = np.zeros(values.size)
    if not reference or reference <= 0:
        return out
    positive = values > 0
    out[positive] = exact.clip01(exact.log1p(values[positive]) / math.log1p(reference))
    return out


@dataclass
class Weighted:
    """A weighted mean of components per customer: the score (NaN when nothing is known), the raw components, where
    each is known, and the share of the weight each known component got (NaN where it is not used)."""

    score: np.ndarray
    components: dict[str, np.ndarray]
    known: dict[str, np.ndarray]
    used: dict[str, np.ndarray]
    pattern: np.ndarray  # which weighted components are used, bit i = i-th key of `used`

    def has_score(self) -> np.ndarray:
        known: np.ndarray = ~np.isnan(self.score)
        return known

    def components_json(self, sl: slice) -> list[str]:
        """{"name": round(component, 4) or null, ...} in the order of the components."""
        names = list(self.components)
        template = "{" + ",".join(f'"{k}":%s' for k in names) + "}"
        return fill(template, *(json_numbers(self.components[k][sl], self.known[k][sl], 4) for k in names))

    def weights_json(self, sl: slice) -> list[str]:
        """{"name": round(share, 4), ...} of the components used; customers with the same pattern of known components
        share the same weights, so one text per pattern, from the shares of its first customer."""
        patterns = self.pattern[sl]
        distinct, first = np.unique(patterns, return_index=True)
        names = list(self.used)
        texts = {}
        for pattern, row in zip(distinct.tolist(), (first + (sl.start or 0)).tolist()):
            shares = {k: self.used[k][row] for i, k in enumerate(names) if pattern >> i & 1}
            texts[pattern] = orjson.dumps(dict(zip(shares, exact.python_round(np.array(list(shares.values()), dtype=float), 4)))).decode()
        return [texts[p] for p in patterns.tolist()]


def weighted(components: dict[str, np.ndarray], known: dict[str, np.ndarray], weights: dict[str, float], n: int) -> Weighted:
    """Weighted mean of the known components (each clipped to 0..1), unknown ones giving their weight to the others;
    0-100 rounded to 2 digits, NaN when no component with a weight is known.

    The total and the score are sums in component order starting at 0, where a component left out adds an exact 0.0,
    so each customer's floats are those of the sum over its known components alone."""
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
            acc = acc + np.where(use, exact.clip01(components[k]) * np.where(use, share, 0.0), 0.0)
    score = np.where(valid, exact.rounded_array(100.0 * acc, 2), np.nan)
    return Weighted(score, components, known, used, pattern)


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
        score: np.ndarray = np.nan_to_num(self.w.score, nan=0.0)  # nothing known: 0
        return score

    def explain(self, sl: slice) -> list[str]:
        score = self.value[sl].tolist()
        revenue, margin, avg, months = (a[sl].tolist() for a in (self.revenue, self.margin, self.avg_order, self.months_active))
        texts = [
            f"{v:.0f}/100: revenue {r:,.0f} and margin {m:,.0f} over 12 months, average order {a:,.0f}, "
            f"orders in {mo} of the last 12 months."
            for v, r, m, a, mo in zip(score, revenue, margin, avg, months)
        ]
        return fill(
            '{"value":%s,"inputs":{"revenue_12m":%s,"margin_12m":%s,"avg_order":%s,"months_with_orders":%s,"components":%s,"weights":%s},"explanation":%s}',
            json_values(score),
            json_numbers(self.revenue[sl], None, 2),
            json_numbers(self.margin[sl], None, 2),
            json_numbers(self.avg_order[sl], None, 2),
            json_values(months),
            self.w.components_json(sl),
            self.w.weights_json(sl),
            json_strings(texts),
        )


def current_value(
    revenue: np.ndarray,
    margin: np.ndarray,
    avg_order: np.ndarray,
    months_active: np.ndarray,
    norms: dict[str, float],
    weights: dict[str, float],
) -> CurrentValue:
    n = len(revenue)
    components = {
        "revenue": log_scaled(revenue, norms["revenue"]),
        "margin": log_scaled(margin, norms["margin"]),
        "order_size": log_scaled(avg_order, norms["order_size"]),
        "continuity": exact.clip01(months_active / 12),
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
        score: np.ndarray = np.nan_to_num(self.w.score, nan=0.0)
        return score

    def explain(self, sl: slice) -> list[str]:
        score = self.value[sl].tolist()
        growth_known = self.w.known["growth"][sl]
        growth, services, clv = self.growth_rate[sl].tolist(), self.services_used[sl].tolist(), self.clv[sl].tolist()
        wallet, _ = nullable(self.share_of_wallet[sl])
        texts = []
        for v, known, g, used, w, c in zip(score, growth_known.tolist(), growth, services, wallet, clv):
            trend = f"monthly revenue trend {g:+.0%} a year" if known else "no revenue trend yet"
            share = "share of wallet unknown" if w is None else f"share of wallet {w:.0%}"
            texts.append(
                f"{v:.0f}/100: {trend}, {used} of {self.service_types} service types used, {share}, expected 12-month margin {c:,.0f}."
            )
        return fill(
            '{"value":%s,"inputs":{"growth_rate":%s,"services_used":%s,"share_of_wallet":%s,"clv_12m":%s,"components":%s,"weights":%s},"explanation":%s}',
            json_values(score),
            json_numbers(self.growth_rate[sl], growth_known, 4),
            json_values(services),
            json_values(wallet),
            json_numbers(self.clv[sl], None, 2),
            self.w.components_json(sl),
            self.w.weights_json(sl),
            json_strings(texts),
        )


def potential_value(
    growth_rate: np.ndarray,
    services_used: np.ndarray,
    share_of_wallet: np.ndarray,
    clv: np.ndarray,
    norms: dict[str, float],
    weights: dict[str, float],
    service_types: int = 5,
) -> PotentialValue:
    """growth: the relative change of monthly revenue over a year mapped to 0..1 (0.5 = flat); cross_sell: the service
    types not used yet (unknown without orders); wallet_room: 1 - share of wallet."""
    n = len(growth_rate)
    growth_known = ~np.isnan(growth_rate)
    growth = np.full(n, np.nan)
    growth[growth_known] = 0.5 + 0.5 * exact.tanh(growth_rate[growth_known])
    wallet_known = ~np.isnan(share_of_wallet)
    components = {
        "growth": growth,
        "cross_sell": exact.clip01((service_types - services_used) / service_types),
        "wallet_room": exact.clip01(1 - share_of_wallet),
        "lifetime_value": log_scaled(clv, norms["clv"]),
    }
    known = {"growth": growth_known, "cross_sell": services_used > 0, "wallet_room": wallet_known, "lifetime_value": _always(n)}
    return PotentialValue(weighted(components, known, weights, n), growth_rate, services_used, share_of_wallet, clv, service_types)


# ---------------------------------------------------------------- satisfaction and loyalty

NO_SATISFACTION = "No deliveries, complaints or surveys yet."


@dataclass
class Satisfaction:
    w: Weighted
    shipments: np.ndarray
    on_time_known: np.ndarray
    on_time: np.ndarray
    incidents: np.ndarray
    complaints: np.ndarray
    complaints_per_100: np.ndarray  # 0 without shipments
    resolved_within_sla: np.ndarray
    survey_mean: np.ndarray
    service_level_months: np.ndarray
    service_level_breaches: np.ndarray

    @property
    def value(self) -> np.ndarray:
        """The score, NaN where nothing is known (None in a record)."""
        return self.w.score

    def explain(self, sl: slice) -> list[str]:
        score, known = nullable(self.w.score[sl])
        shipments, incidents, complaints = self.shipments[sl].tolist(), self.incidents[sl].tolist(), self.complaints[sl].tolist()
        rate, rate_known = self.w.components["on_time"][sl].tolist(), self.w.known["on_time"][sl].tolist()
        survey_known = self.w.known["survey"][sl]
        per100, survey = self.complaints_per_100[sl].tolist(), self.survey_mean[sl].tolist()
        months, breaches = self.service_level_months[sl].tolist(), self.service_level_breaches[sl].tolist()
        texts = []
        for v, k, sh, inc, p100, r, rk, sv, svk, mo, br in zip(
            score, known, shipments, incidents, per100, rate, rate_known, survey, survey_known.tolist(), months, breaches
        ):
            if not k:
                texts.append(NO_SATISFACTION)
                continue
            texts.append(
                f"{v:.0f}/100: "
                + (f"{r:.0%} on time" if rk else "on-time rate unknown")
                + f", {inc} damaged or lost of {sh} shipments, {p100:.1f} complaints per 100 shipments"
                + ("" if not svk else f", survey average {sv:.1f}/5")
                + ("" if not mo else f", {br} of {mo} measured months missed a service-level target")
                + "."
            )
        template = (
            '{"value":%s,"inputs":{"shipments":%s,"on_time_known":%s,"on_time":%s,"damaged_or_lost":%s,"complaints":%s,"resolved_within_sla":%s,'
            '"survey_mean":%s,"service_level_months":%s,"service_level_breaches":%s,"components":%s,"weights":%s},"explanation":%s}'
        )
        return fill(
            template,
            json_values(score),
            json_values(shipments),
            json_numbers(self.on_time_known[sl]),
            json_numbers(self.on_time[sl]),
            json_values(incidents),
            json_values(complaints),
            json_numbers(self.resolved_within_sla[sl]),
            json_numbers(self.survey_mean[sl], survey_known, 3),
            json_values(months),
            json_values(breaches),
            self.w.components_json(sl),
            self.w.weights_json(sl),
            json_strings(texts),
        )


def satisfaction(
    shipments: np.ndarray,
    on_time_known: np.ndarray,
    on_time: np.ndarray,
    incidents: np.ndarray,
    complaints: np.ndarray,
    resolved_within_sla: np.ndarray,
    survey_mean: np.ndarray,
    service_level_months: np.ndarray,
    service_level_breaches: np.ndarray,
    weights: dict[str, float],
) -> Satisfaction:
    """on_time: share of the shipments with a promise delivered on time; damage_loss: 1 - 10 x incidents per shipment;
    complaints: 1 - complaints per 100 shipments / 10 (0 with complaints and no shipments); resolution: complaints
    resolved within SLA; survey: the 1-5 mean mapped to 0..1; service_levels: the share of the measured months
    (service_level_months) that met every agreed target (ServiceLevelBreached for the others)."""
    n = len(shipments)
    shipped = shipments != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        per100 = np.where(shipped, 100 * complaints / shipments, 0.0)
        components = {
            "on_time": on_time / on_time_known,
            "damage_loss": exact.clip01(1 - 10 * incidents / shipments),
            "complaints": np.where(shipped, exact.clip01(1 - per100 / 10), 0.0),
            "resolution": resolved_within_sla / complaints,
            "survey": (survey_mean - 1) / 4,
            "service_levels": 1 - service_level_breaches / service_level_months,
        }
    known = {
        "on_time": on_time_known != 0,
        "damage_loss": shipped,
        "complaints": shipped | (complaints != 0),
        "resolution": complaints != 0,
        "survey": ~np.isnan(survey_mean),
        "service_levels": service_level_months != 0,
    }
    return Satisfaction(
        weighted(components, known, weights, n),
        shipments,
        on_time_known,
        on_time,
        incidents,
        complaints,
        per100,
        resolved_within_sla,
        survey_mean,
        service_level_months,
        service_level_breaches,
    )


NO_LOYALTY = '{"value":0.0,"inputs":{"orders":0},"explanation":"0/100: no orders yet."}'


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

    def explain(self, sl: slice) -> list[str]:
        score, orders, tenure = self.value[sl].tolist(), self.orders[sl].tolist(), self.tenure_days[sl].tolist()
        satisfaction_score, _ = nullable(self.satisfaction[sl])
        wallet, _ = nullable(self.share_of_wallet[sl])
        repeat, regularity = self.w.components["repeat_rate"][sl].tolist(), self.w.components["regularity"][sl].tolist()
        regular_known = self.w.known["regularity"][sl]
        texts = []
        for v, o, t, rep, reg, rk, st in zip(score, orders, tenure, repeat, regularity, regular_known.tolist(), satisfaction_score):
            if o <= 0:
                texts.append("")
                continue
            texts.append(
                f"{v:.0f}/100: {o} orders ({rep:.0%} repeat), customer for {t:.0f} days, "
                + (f"regularity {reg:.2f}" if rk else "ordering regularity unknown")
                + ("" if st is None else f", satisfaction {st:.0f}")
                + ". Unknown parts are left out and their weight shared by the others."
            )
        rendered = fill(
            '{"value":%s,"inputs":{"orders":%s,"tenure_days":%s,"gap_cv":%s,"share_of_wallet":%s,"satisfaction":%s,"components":%s,"weights":%s},'
            '"explanation":%s}',
            json_values(score),
            json_values(orders),
            json_numbers(self.tenure_days[sl], None, 1),
            json_numbers(self.gap_cv[sl], regular_known, 4),
            json_values(wallet),
            json_values(satisfaction_score),
            self.w.components_json(sl),
            self.w.weights_json(sl),
            json_strings(texts),
        )
        return [text if o > 0 else NO_LOYALTY for text, o in zip(rendered, orders)]


def loyalty(
    orders: np.ndarray,
    tenure_days: np.ndarray,
    gap_cv: np.ndarray,
    share_of_wallet: np.ndarray,
    satisfaction_score: np.ndarray,
    weights: dict[str, float],
    tenure_full_days: int = 730,
) -> Loyalty:
    """repeat_rate: (orders - 1) / orders; tenure: days as a customer / tenure_full_days; regularity: 1 - the coefficient
    of variation of the gaps between orders; share of wallet; satisfaction / 100. 0 without orders."""
    n = len(orders)
    with np.errstate(divide="ignore", invalid="ignore"):
        components = {
            "repeat_rate": (orders - 1) / orders,
            "tenure": exact.clip01(tenure_days / tenure_full_days),
            "regularity": exact.clip01(1 - gap_cv),
            "share_of_wallet": share_of_wallet,
            "satisfaction": satisfaction_score / 100,
        }
    buyer = orders > 0
    known = {
        "repeat_rate": buyer,
        "tenure": buyer,
        "regularity": buyer & ~np.isnan(gap_cv),
        "share_of_wallet": buyer & ~np.isnan(share_of_wallet),
        "satisfaction": buyer & ~np.isnan(satisfaction_score),
    }
    return Loyalty(weighted(components, known, weights, n), orders, tenure_days, gap_cv, share_of_wallet, satisfaction_score)


# ---------------------------------------------------------------- credit


def credit_reasons(on_time_rate: float | None, overdue: float, defaults: int, limit_use: float | None) -> str:
    parts = ["on-time payment rate unknown" if on_time_rate is None else f"{on_time_rate:.0%} paid on time"]
    parts.append(f"longest open overdue {overdue:.0f} days")
    if defaults:
        parts.append(f"{defaults} past default")
    if limit_use is not None:
        parts.append(f"{limit_use:.0%} of the credit limit in use")
    return ", ".join(parts) + "."


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

    def explain(self, sl: slice) -> list[str]:
        grades, invoices, paid, overdue, defaults = (
            a[sl].tolist() for a in (self.grade, self.invoices, self.paid, self.max_open_days_overdue, self.defaults)
        )
        rate, _ = nullable(self.on_time_rate[sl])
        use, _ = nullable(self.limit_use[sl])
        texts = []
        for g, inv, p, od, d, r, u in zip(grades, invoices, paid, overdue, defaults, rate, use):
            if g == "D":
                texts.append(f"D (serious default): an invoice {od:.0f} days overdue or {d} defaults (>= {self.default_days} days late).")
            elif g == "C":
                texts.append("C (low): " + credit_reasons(r, od, d, u))
            elif g == "A":
                texts.append(f"A (high): {p} invoices paid, {r:.0%} on time, nothing overdue.")
            elif inv == 0:
                texts.append("B (ordinary): no invoices yet.")
            else:
                texts.append("B (ordinary): " + credit_reasons(r, od, d, u))
        rate_known, use_known = ~np.isnan(self.on_time_rate[sl]), ~np.isnan(self.limit_use[sl])
        template = (
            '{"value":%s,"inputs":{"invoices":%s,"paid":%s,"paid_on_time":%s,"on_time_rate":%s,"max_open_days_overdue":%s,"defaults":%s,'
            '"outstanding":%s,"credit_limit":%s,"limit_use":%s},"explanation":%s}'
        )
        return fill(
            template,
            json_strings(grades),
            json_values(invoices),
            json_values(paid),
            json_numbers(self.paid_on_time[sl]),
            json_numbers(self.on_time_rate[sl], rate_known, 4),
            json_values(overdue),
            json_values(defaults),
            json_numbers(self.outstanding[sl], None, 2),
            json_values(nullable(self.credit_limit[sl])[0]),
            json_numbers(self.limit_use[sl], use_known, 4),
            json_strings(texts),
        )


def credit_grade(
    invoices: np.ndarray,
    paid: np.ndarray,
    paid_on_time: np.ndarray,
    max_open_days_overdue: np.ndarray,
    defaults: np.ndarray,
    outstanding: np.ndarray,
    credit_limit: np.ndarray,
    default_days: int = 90,
) -> Credit:
    """A high, B ordinary, C low, D serious default. Rules in order; the first that applies decides: D, C, A, else B."""
    with np.errstate(divide="ignore", invalid="ignore"):
        on_time_rate = np.where(paid != 0, paid_on_time / paid, np.nan)
        has_limit = ~np.isnan(credit_limit) & (credit_limit != 0)
        limit_use = np.where(has_limit, outstanding / credit_limit, np.nan)
    rate_known, use_known = ~np.isnan(on_time_rate), ~np.isnan(limit_use)
    serious = (max_open_days_overdue >= default_days) | (defaults >= 2)
    low = (rate_known & (on_time_rate < 0.7)) | (max_open_days_overdue > 30) | (defaults >= 1) | (use_known & (limit_use > 1.0))
    high = (paid >= 3) & rate_known & (on_time_rate >= 0.95) & (max_open_days_overdue == 0) & (~use_known | (limit_use <= 0.8))
    grade = np.select([serious, low, high], ["D", "C", "A"], default="B").astype(object)
    return Credit(
        grade,
        invoices,
        paid,
        paid_on_time,
        max_open_days_overdue,
        defaults,
        outstanding,
        credit_limit,
        on_time_rate,
        limit_use,
        default_days,
    )


# ---------------------------------------------------------------- churn

SIGNALS = ("ordering_frequency_dropped", "open_complaint_past_sla", "satisfaction_falling", "service_level_breached")
RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


def churn_signals(
    order_days_recent: np.ndarray,
    order_days_before: np.ndarray,
    history_days: np.ndarray,
    open_past_sla: np.ndarray,
    satisfaction_all: np.ndarray,
    satisfaction_recent: np.ndarray,
    recent_breaches: np.ndarray,
    *,
    drop_ratio: float = 0.5,
    satisfaction_drop: float = 15.0,
    recent_days: int = 90,
) -> dict[str, np.ndarray]:
    """One boolean array per signal (in the order of SIGNALS): order days in the last `recent_days` below `drop_ratio`
    of what the customer's earlier rate (at least 3 order days) predicts; an open complaint past its SLA; recent
    satisfaction (NaN: unknown) `satisfaction_drop` points or more below the overall one; a month that ended in the
    last `recent_days` missed an agreed service-level target (the gap between promised and received service)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_recent = order_days_before / history_days * recent_days
        dropped = (order_days_before >= 3) & (history_days > 0) & (order_days_recent < drop_ratio * expected_recent)
        falling = (
            ~np.isnan(satisfaction_all) & ~np.isnan(satisfaction_recent) & (satisfaction_all - satisfaction_recent >= satisfaction_drop)
        )
    return {
        "ordering_frequency_dropped": dropped,
        "open_complaint_past_sla": open_past_sla > 0,
        "satisfaction_falling": falling,
        "service_level_breached": recent_breaches > 0,
    }


def risk_level(p_alive: np.ndarray, signal_count: np.ndarray, *, high: float, medium: float) -> np.ndarray:
    """high: P(alive) below `high` or two signals; medium: P(alive) below `medium` or one signal; else low. p_alive NaN = unknown."""
    known = ~np.isnan(p_alive)
    is_high = (known & (p_alive < high)) | (signal_count >= 2)
    is_medium = (known & (p_alive < medium)) | (signal_count >= 1)
    return np.select([is_high, is_medium], ["high", "medium"], default="low").astype(object)


def signal_codes(signals: dict[str, np.ndarray], sl: slice) -> list[int]:
    """Each customer's signals as a bit set (bit i = SIGNALS[i])."""
    code = np.zeros(sl.stop - sl.start, dtype=np.int64)
    for bit, name in enumerate(SIGNALS):
        code |= signals[name][sl].astype(np.int64) << bit
    codes: list[int] = code.tolist()
    return codes


SIGNAL_SETS = [[name for bit, name in enumerate(SIGNALS) if code >> bit & 1] for code in range(2 ** len(SIGNALS))]
SIGNAL_JSON = [orjson.dumps(names).decode() for names in SIGNAL_SETS]


def signal_lists(codes: list[int]) -> list[list[str]]:
    return [list(SIGNAL_SETS[c]) for c in codes]


NO_ORDERS_RISK = '{"value":"low","inputs":{"signals":[]},"explanation":"low: no orders yet."}'


def churn_risk_explanations(
    levels: np.ndarray, p_alive: np.ndarray, expected: np.ndarray, signal_code: list[int], with_model: np.ndarray, sl: slice
) -> list[str]:
    """The churn risk's explanation; without a risk model (a customer with neither orders nor signals) the short form."""
    level = levels[sl].tolist()
    p, _ = nullable(p_alive[sl])
    e, _ = nullable(expected[sl])
    texts = []
    for lv, pa, ex, code in zip(level, p, e, signal_code):
        sig = SIGNAL_SETS[code]
        model = (
            "no population model yet"
            if pa is None
            else f"P(alive) {pa:.2f}" + (f", {ex:.1f} orders expected in 90 days" if ex is not None else "")
        )
        texts.append(f"{lv}: {model}" + (f"; signals: {', '.join(x.replace('_', ' ') for x in sig)}" if sig else "; no rule signals") + ".")
    rendered = fill(
        '{"value":%s,"inputs":{"p_alive":%s,"expected_orders_90d":%s,"signals":%s},"explanation":%s}',
        json_strings(level),
        json_numbers(p_alive[sl], ~np.isnan(p_alive[sl]), 4),
        json_numbers(expected[sl], ~np.isnan(expected[sl]), 3),
        [SIGNAL_JSON[code] for code in signal_code],
        json_strings(texts),
    )
    return [text if full else NO_ORDERS_RISK for text, full in zip(rendered, with_model[sl].tolist())]


# ---------------------------------------------------------------- matrices and tier


def _high(scores: np.ndarray, threshold: float) -> np.ndarray:
    high: np.ndarray = ~np.isnan(scores) & (scores >= threshold)
    return high


def _cells(first: np.ndarray, second: np.ndarray, names: tuple[str, str, str, str]) -> np.ndarray:
    """(True, True), (True, False), (False, True), (False, False) -> names."""
    return np.select([first & second, first & ~second, ~first & second], list(names[:3]), default=names[3]).astype(object)


VALUE_LOYALTY_CELLS = ("keep_close", "win_loyalty", "grow_value", "low_priority")
CREDIT_LOYALTY_CELLS = ("gold", "to_develop", "to_watch", "to_drop")


def value_loyalty_cells(value: np.ndarray, loyalty_score: np.ndarray, threshold: float = 50) -> np.ndarray:
    """value x loyalty: keep_close / win_loyalty / grow_value / low_priority."""
    return _cells(_high(value, threshold), _high(loyalty_score, threshold), VALUE_LOYALTY_CELLS)


def credit_loyalty_cells(grades: np.ndarray, loyalty_score: np.ndarray, threshold: float = 50) -> np.ndarray:
    """credit x loyalty: gold (good credit, loyal), to_develop (good credit, not yet loyal), to_watch (poor credit, loyal), to_drop."""
    good = np.isin(grades, ["A", "B"])
    return _cells(good, _high(loyalty_score, threshold), CREDIT_LOYALTY_CELLS)


# current x potential value (../shared/domain.md): both high important (重要), current low and potential high big (大),
# current high and potential low medium (中等), both low small (小); in the order (high, high), (high, low), (low, high), (low, low)
VALUE_MATRIX_CELLS = ("important", "medium", "big", "small")


def value_matrix_cells(current: np.ndarray, potential: np.ndarray, threshold: float = 50) -> np.ndarray:
    return _cells(_high(current, threshold), _high(potential, threshold), VALUE_MATRIX_CELLS)


def matrices_explanations(value_loyalty: list[str], credit_loyalty: list[str], value_matrix: list[str]) -> list[str]:
    return fill(
        '{"value_loyalty":%s,"credit_loyalty":%s,"current_potential":%s}',
        json_strings(value_loyalty),
        json_strings(credit_loyalty),
        json_strings(value_matrix),
    )


KEY_ACCOUNT_TEXTS = {  # (in class A, flagged by hand) -> why the customer is a key account
    (True, False): "Key account: in class A, the top contributors.",
    (False, True): "Key account: flagged by hand on the profile.",
    (True, True): "Key account: in class A, the top contributors, and flagged by hand on the profile.",
}
TIER_TEXTS = {"at_risk": "At risk: high churn risk.", "small": "Small: class D or no orders in the last 12 months."}


AGREED_TIERS = ("key_account", "ordinary", "small")  # the commercial tiers: what a customer agrees service levels for


def commercial_tiers(abc_class: np.ndarray, orders_window: np.ndarray, flagged_key_account: np.ndarray) -> np.ndarray:
    """The tier without its churn branch: key_account (class A or flagged by hand: the profile's size band key_account),
    small (class D, no class, or no orders in the window), ordinary. It never depends on churn risk, so the service-level
    targets agreed for it (judged into breaches, which feed churn risk) cannot depend on themselves."""
    is_a = (abc_class == "A") | flagged_key_account
    small = np.array([c is None or c == "D" for c in abc_class.tolist()], dtype=bool) | (orders_window == 0)
    return np.select([is_a, small], ["key_account", "small"], default="ordinary").astype(object)


def tiers(abc_class: np.ndarray, risk: np.ndarray, orders_window: np.ndarray, flagged_key_account: np.ndarray) -> np.ndarray:
    """The commercial tier, except at_risk (high churn risk) for a customer who is not a key account."""
    commercial = commercial_tiers(abc_class, orders_window, flagged_key_account)
    return np.where((commercial != "key_account") & (risk == "high"), "at_risk", commercial).astype(object)


def _tier_reason(tier: str, abc_class: str | None, flagged: bool) -> str:
    if tier == "key_account":
        return KEY_ACCOUNT_TEXTS[(abc_class == "A", flagged)]
    return TIER_TEXTS.get(tier) or f"Ordinary: class {abc_class}."


def tier_explanations(
    tier: list[str], abc_class: list[str | None], flagged: list[bool], risk: list[str], orders_window: list[int]
) -> tuple[list[str], list[str]]:
    """(JSON of the tier's explanation, its sentence) per customer."""
    reasons = [_tier_reason(t, c, f) for t, c, f in zip(tier, abc_class, flagged)]
    rendered = fill(
        '{"value":%s,"inputs":{"abc_class":%s,"key_account_flag":%s,"churn_risk":%s,"orders_12m":%s},"explanation":%s}',
        json_strings(tier),
        json_values(abc_class),
        json_values(flagged),
        json_strings(risk),
        json_values(orders_window),
        json_strings(reasons),
    )
    return rendered, reasons


# ---------------------------------------------------------------- the population model's scores (abc.py, rfm.py, engine._clv)


def abc_explanations(
    classes: list[str], contribution: list[float], contribution_json: list[str], model: PopulationModel | None
) -> list[str]:
    if model is None:
        return ["null"] * len(classes)
    t = model.abc
    head = (
        '{"value":%s,"inputs":{"basis":'
        + orjson.dumps(model.abc_basis).decode()
        + ',"contribution_12m":%s,"thresholds":'
        + orjson.dumps(t.as_dict()).decode()
        + '},"explanation":%s}'
    )
    tail = f" against the thresholds A>={t.a}, B>={t.b}, C>={t.c}."
    texts = [f"Class {c}: {model.abc_basis} over 12 months {v:,.0f}{tail}" for c, v in zip(classes, contribution)]
    return fill(head, json_strings(classes), contribution_json, json_strings(texts))


def rfm_explanations(
    r: list[int | None],
    f: list[int | None],
    m: list[int | None],
    segment: list[str | None],
    recency_days: list[int],
    orders_json: list[str],
    revenue_json: list[str],
) -> list[str]:
    texts = [f"R{a} F{b} M{c} ({s.replace('_', ' ')})" if a is not None and s is not None else "" for a, b, c, s in zip(r, f, m, segment)]
    rendered = fill(
        '{"value":{"r":%s,"f":%s,"m":%s,"segment":%s},"inputs":{"recency_days":%s,"orders_12m":%s,"revenue_12m":%s},"explanation":%s}',
        json_values(r),
        json_values(f),
        json_values(m),
        json_values(segment),
        json_values(recency_days),
        orders_json,
        revenue_json,
        json_strings(texts),
    )
    return [text if a is not None else "null" for text, a in zip(rendered, r)]


CLV_EXPLANATION = (
    "Expected order days in 12 months x expected margin per order day (Gamma-Gamma), less the historical cost to serve "
    "(damage, loss, compensation) per order day."
)


def lifetime_value_explanations(clv_json: list[str], margin_per_order_day: np.ndarray, model_name: str) -> list[str]:
    template = (
        '{"value":%s,"inputs":{"expected_margin_per_order_day":%s,"model":'
        + orjson.dumps(model_name).decode()
        + '},"explanation":'
        + orjson.dumps(CLV_EXPLANATION).decode()
        + "}"
    )
    return fill(template, clv_json, json_numbers(margin_per_order_day, None, 2))


DETAIL = (
    '{"current_value":%s,"potential_value":%s,"abc_class":%s,"rfm":%s,"loyalty":%s,"satisfaction":%s,"credit_grade":%s,"churn_risk":%s,'
    '"lifetime_value":%s,"tier":%s,"matrices":%s}'
)
