"""The test oracle of crm_scoring.model.scores: every score of one customer as a plain function of named inputs
returning an `Explained` (value, inputs, sentence), written the obvious way, one customer at a time.

The service computes the scores for many customers at once (crm_scoring.model.scores); the tests compare its values
and explanations, byte for byte, with these. Imports nothing of the service.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Explained:
    value: Any
    inputs: dict[str, Any] = field(default_factory=dict)
    explanation: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "inputs": self.inputs, "explanation": self.explanation}


def weighted(components: dict[str, float | None], weights: dict[str, float]) -> tuple[float | None, dict[str, float]]:
    """Weighted mean of the known components (each 0..1); unknown ones give their weight to the others.

    Returns (score 0-100 or None when nothing is known, the weights actually used).
    """
    known = {k: v for k, v in components.items() if v is not None and weights.get(k, 0) > 0}
    total = sum(weights[k] for k in known)
    if not known or total <= 0:
        return None, {}
    used = {k: weights[k] / total for k in known}
    score = 100.0 * sum(min(1.0, max(0.0, known[k])) * used[k] for k in known)
    return round(score, 2), {k: round(w, 4) for k, w in used.items()}


def clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


# ---------------------------------------------------------------- value


def log_scaled(value: float, reference: float) -> float:
    """0 at 0, 1 at the population's 95th percentile (or above), logarithmic in between."""
    if value is None or value <= 0 or not reference or reference <= 0:
        return 0.0
    return clip01(math.log1p(value) / math.log1p(reference))


def current_value(revenue: float, margin: float, avg_order: float, months_active: int, norms: dict, weights: dict) -> Explained:
    components = {
        "revenue": log_scaled(revenue, norms["revenue"]),
        "margin": log_scaled(margin, norms["margin"]),
        "order_size": log_scaled(avg_order, norms["order_size"]),
        "continuity": clip01(months_active / 12),
    }
    score, used = weighted(components, weights)
    score = score or 0.0
    return Explained(
        score,
        {
            "revenue_12m": round(revenue, 2),
            "margin_12m": round(margin, 2),
            "avg_order": round(avg_order, 2),
            "months_with_orders": months_active,
            "components": {k: round(v, 4) for k, v in components.items()},
            "weights": used,
        },
        f"{score:.0f}/100: revenue {revenue:,.0f} and margin {margin:,.0f} over 12 months, average order {avg_order:,.0f}, "
        f"orders in {months_active} of the last 12 months.",
    )


def growth_component(growth_rate: float | None) -> float | None:
    """Relative change of monthly revenue over a year mapped to 0..1 (0.5 = flat)."""
    if growth_rate is None or (isinstance(growth_rate, float) and math.isnan(growth_rate)):
        return None
    return 0.5 + 0.5 * math.tanh(growth_rate)


def potential_value(
    growth_rate: float | None,
    services_used: int,
    share_of_wallet: float | None,
    clv: float,
    norms: dict,
    weights: dict,
    service_types: int = 5,
) -> Explained:
    growth = growth_component(growth_rate)
    cross_sell = clip01((service_types - services_used) / service_types) if services_used > 0 else None
    wallet_room = None if share_of_wallet is None else clip01(1 - share_of_wallet)
    components = {"growth": growth, "cross_sell": cross_sell, "wallet_room": wallet_room, "lifetime_value": log_scaled(clv, norms["clv"])}
    score, used = weighted(components, weights)
    score = score or 0.0
    parts = [f"{score:.0f}/100:"]
    parts.append("no revenue trend yet" if growth is None else f"monthly revenue trend {growth_rate:+.0%} a year")
    parts.append(f"{services_used} of {service_types} service types used")
    parts.append("share of wallet unknown" if share_of_wallet is None else f"share of wallet {share_of_wallet:.0%}")
    parts.append(f"expected 12-month margin {clv:,.0f}")
    return Explained(
        score,
        {
            "growth_rate": None if growth is None else round(growth_rate, 4),
            "services_used": services_used,
            "share_of_wallet": share_of_wallet,
            "clv_12m": round(clv, 2),
            "components": {k: (None if v is None else round(v, 4)) for k, v in components.items()},
            "weights": used,
        },
        " ".join(parts[:1]) + " " + ", ".join(parts[1:]) + ".",
    )


# ---------------------------------------------------------------- loyalty and satisfaction


def loyalty(
    orders: int,
    tenure_days: float,
    gap_cv: float | None,
    share_of_wallet: float | None,
    satisfaction: float | None,
    weights: dict,
    tenure_full_days: int = 730,
) -> Explained:
    if orders <= 0:
        return Explained(0.0, {"orders": 0}, "0/100: no orders yet.")
    components = {
        "repeat_rate": (orders - 1) / orders,
        "tenure": clip01(tenure_days / tenure_full_days),
        "regularity": None if gap_cv is None or math.isnan(gap_cv) else clip01(1 - gap_cv),
        "share_of_wallet": share_of_wallet,
        "satisfaction": None if satisfaction is None else satisfaction / 100,
    }
    score, used = weighted(components, weights)
    score = score or 0.0
    return Explained(
        score,
        {
            "orders": orders,
            "tenure_days": round(tenure_days, 1),
            "gap_cv": None if components["regularity"] is None else round(gap_cv, 4),
            "share_of_wallet": share_of_wallet,
            "satisfaction": satisfaction,
            "components": {k: (None if v is None else round(v, 4)) for k, v in components.items()},
            "weights": used,
        },
        f"{score:.0f}/100: {orders} orders ({components['repeat_rate']:.0%} repeat), customer for {tenure_days:.0f} days, "
        + ("ordering regularity unknown" if components["regularity"] is None else f"regularity {components['regularity']:.2f}")
        + ("" if satisfaction is None else f", satisfaction {satisfaction:.0f}")
        + ". Unknown parts are left out and their weight shared by the others.",
    )


def satisfaction(
    shipments: int,
    on_time_known: int,
    on_time: float,
    incidents: int,
    complaints: int,
    resolved_within_sla: float,
    survey_mean: float | None,
    service_level_months: int,
    service_level_breaches: int,
    weights: dict,
) -> Explained:
    components: dict[str, float | None] = {
        "on_time": on_time / on_time_known if on_time_known else None,
        "damage_loss": clip01(1 - 10 * incidents / shipments) if shipments else None,
        "complaints": (clip01(1 - (100 * complaints / shipments) / 10) if shipments else (0.0 if complaints else None)),
        "resolution": resolved_within_sla / complaints if complaints else None,
        "survey": None if survey_mean is None or math.isnan(survey_mean) else (survey_mean - 1) / 4,
        "service_levels": 1 - service_level_breaches / service_level_months if service_level_months else None,
    }
    score, used = weighted(components, weights)
    inputs = {
        "shipments": shipments,
        "on_time_known": on_time_known,
        "on_time": on_time,
        "damaged_or_lost": incidents,
        "complaints": complaints,
        "resolved_within_sla": resolved_within_sla,
        "survey_mean": None if components["survey"] is None else round(survey_mean, 3),
        "service_level_months": service_level_months,
        "service_level_breaches": service_level_breaches,
        "components": {k: (None if v is None else round(v, 4)) for k, v in components.items()},
        "weights": used,
    }
    if score is None:
        return Explained(None, inputs, "No deliveries, complaints or surveys yet.")
    per100 = 100 * complaints / shipments if shipments else 0.0
    return Explained(
        score,
        inputs,
        f"{score:.0f}/100: "
        + (f"{components['on_time']:.0%} on time" if components["on_time"] is not None else "on-time rate unknown")
        + f", {incidents} damaged or lost of {shipments} shipments, {per100:.1f} complaints per 100 shipments"
        + ("" if components["survey"] is None else f", survey average {survey_mean:.1f}/5")
        + (
            ""
            if not service_level_months
            else f", {service_level_breaches} of {service_level_months} measured months missed a service-level target"
        )
        + ".",
    )


# ---------------------------------------------------------------- credit


def credit_grade(
    invoices: int,
    paid: int,
    paid_on_time: int,
    max_open_days_overdue: float,
    defaults: int,
    outstanding: float,
    credit_limit: float | None,
    default_days: int = 90,
) -> Explained:
    """A high, B ordinary, C low, D serious default. Rules in order; the first that applies decides."""
    on_time_rate = paid_on_time / paid if paid else None
    limit_use = outstanding / credit_limit if credit_limit else None
    inputs = {
        "invoices": invoices,
        "paid": paid,
        "paid_on_time": paid_on_time,
        "on_time_rate": None if on_time_rate is None else round(on_time_rate, 4),
        "max_open_days_overdue": max_open_days_overdue,
        "defaults": defaults,
        "outstanding": round(outstanding, 2),
        "credit_limit": credit_limit,
        "limit_use": None if limit_use is None else round(limit_use, 4),
    }
    if max_open_days_overdue >= default_days or defaults >= 2:
        return Explained(
            "D",
            inputs,
            f"D (serious default): an invoice {max_open_days_overdue:.0f} days overdue or {defaults} defaults "
            f"(>= {default_days} days late).",
        )
    if (
        (on_time_rate is not None and on_time_rate < 0.7)
        or max_open_days_overdue > 30
        or defaults >= 1
        or (limit_use is not None and limit_use > 1.0)
    ):
        return Explained("C", inputs, "C (low): " + credit_reasons(on_time_rate, max_open_days_overdue, defaults, limit_use))
    if (
        paid >= 3
        and on_time_rate is not None
        and on_time_rate >= 0.95
        and max_open_days_overdue == 0
        and (limit_use is None or limit_use <= 0.8)
    ):
        return Explained("A", inputs, f"A (high): {paid} invoices paid, {on_time_rate:.0%} on time, nothing overdue.")
    if invoices == 0:
        return Explained("B", inputs, "B (ordinary): no invoices yet.")
    return Explained("B", inputs, "B (ordinary): " + credit_reasons(on_time_rate, max_open_days_overdue, defaults, limit_use))


def credit_reasons(on_time_rate, overdue, defaults, limit_use) -> str:
    parts = ["on-time payment rate unknown" if on_time_rate is None else f"{on_time_rate:.0%} paid on time"]
    parts.append(f"longest open overdue {overdue:.0f} days")
    if defaults:
        parts.append(f"{defaults} past default")
    if limit_use is not None:
        parts.append(f"{limit_use:.0%} of the credit limit in use")
    return ", ".join(parts) + "."


# ---------------------------------------------------------------- churn


def churn_signals(
    order_days_recent: int,
    order_days_before: int,
    history_days: float,
    open_past_sla: int,
    satisfaction_all: float | None,
    satisfaction_recent: float | None,
    recent_breaches: int,
    *,
    drop_ratio: float = 0.5,
    satisfaction_drop: float = 15.0,
    recent_days: int = 90,
) -> list[str]:
    signals = []
    if order_days_before >= 3 and history_days > 0:
        expected_recent = order_days_before / history_days * recent_days
        if order_days_recent < drop_ratio * expected_recent:
            signals.append("ordering_frequency_dropped")
    if open_past_sla > 0:
        signals.append("open_complaint_past_sla")
    if satisfaction_all is not None and satisfaction_recent is not None and satisfaction_all - satisfaction_recent >= satisfaction_drop:
        signals.append("satisfaction_falling")
    if recent_breaches > 0:
        signals.append("service_level_breached")
    return signals


RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


def churn_risk(
    p_alive: float | None, expected_orders: float | None, signals: list[str], *, high: float = 0.3, medium: float = 0.6
) -> Explained:
    if (p_alive is not None and p_alive < high) or len(signals) >= 2:
        level = "high"
    elif (p_alive is not None and p_alive < medium) or signals:
        level = "medium"
    else:
        level = "low"
    model = (
        "no population model yet"
        if p_alive is None
        else (f"P(alive) {p_alive:.2f}" + (f", {expected_orders:.1f} orders expected in 90 days" if expected_orders is not None else ""))
    )
    return Explained(
        level,
        {
            "p_alive": None if p_alive is None else round(p_alive, 4),
            "expected_orders_90d": None if expected_orders is None else round(expected_orders, 3),
            "signals": signals,
        },
        f"{level}: {model}" + (f"; signals: {', '.join(s.replace('_', ' ') for s in signals)}" if signals else "; no rule signals") + ".",
    )


# ---------------------------------------------------------------- matrices and tier


def _high(score: float | None, threshold: float) -> bool:
    return score is not None and score >= threshold


def value_loyalty_cell(value: float, loyalty_score: float, threshold: float = 50) -> str:
    """value x loyalty: keep_close / win_loyalty / grow_value / low_priority."""
    hv, hl = _high(value, threshold), _high(loyalty_score, threshold)
    return {(True, True): "keep_close", (True, False): "win_loyalty", (False, True): "grow_value", (False, False): "low_priority"}[(hv, hl)]


def credit_loyalty_cell(grade: str, loyalty_score: float, threshold: float = 50) -> str:
    """credit x loyalty: gold (good credit, loyal), to_develop (good credit, not yet loyal), to_watch (poor credit, loyal), to_drop."""
    good, loyal = grade in ("A", "B"), _high(loyalty_score, threshold)
    return {(True, True): "gold", (True, False): "to_develop", (False, True): "to_watch", (False, False): "to_drop"}[(good, loyal)]


# current x potential value (../shared/domain.md): both high important (重要), current low and potential high big (大),
# current high and potential low medium (中等), both low small (小); in the order (high, high), (high, low), (low, high), (low, low)
VALUE_MATRIX_CELLS = ("important", "medium", "big", "small")


def value_matrix_cell(current: float, potential: float, threshold: float = 50) -> str:
    """current x potential value: important (both high), medium (current high only), big (potential high only), small."""
    hc, hp = _high(current, threshold), _high(potential, threshold)
    return VALUE_MATRIX_CELLS[2 * (not hc) + (not hp)]


KEY_ACCOUNT_TEXTS = {  # (in class A, flagged by hand) -> why the customer is a key account
    (True, False): "Key account: in class A, the top contributors.",
    (False, True): "Key account: flagged by hand on the profile.",
    (True, True): "Key account: in class A, the top contributors, and flagged by hand on the profile.",
}


def tier(abc_class: str | None, risk_level: str, orders_window: int, flagged_key_account: bool = False) -> Explained:
    """key_account (class A or flagged by hand: the profile's size band key_account), at_risk (high churn risk),
    small (class D or no orders in the window), ordinary."""
    inputs = {"abc_class": abc_class, "key_account_flag": flagged_key_account, "churn_risk": risk_level, "orders_12m": orders_window}
    if abc_class == "A" or flagged_key_account:
        return Explained("key_account", inputs, KEY_ACCOUNT_TEXTS[(abc_class == "A", flagged_key_account)])
    if risk_level == "high":
        return Explained("at_risk", inputs, "At risk: high churn risk.")
    if abc_class in (None, "D") or orders_window == 0:
        return Explained("small", inputs, "Small: class D or no orders in the last 12 months.")
    return Explained("ordinary", inputs, f"Ordinary: class {abc_class}.")


def abc_class(contribution: float | None, t) -> str:
    """abc.classify_many for one contribution (t: abc.AbcThresholds)."""
    if contribution is None or contribution <= 0:
        return "D"
    for label, threshold in (("A", t.a), ("B", t.b), ("C", t.c)):
        if threshold is not None and contribution >= threshold:
            return label
    return "D"


def rfm_score(value: float, bp) -> int:
    """rfm.score_many for one value (bp: rfm.Breakpoints)."""
    result = 1
    for cut in bp.cuts:
        if cut is None:
            continue
        if (value >= cut) if bp.higher_is_better else (value <= cut):
            result += 1
    return result


def rfm_quintile_scores(values) -> list[int]:
    """The RFM definition, one value at a time (higher is better): 1 + floor(5 k / n), k the values strictly worse."""
    values = [float(v) for v in values]
    ordered, n = sorted(values), len(values)
    return [min(5, 1 + (5 * bisect.bisect_left(ordered, v)) // n) for v in values]


def rfm_describe(r: int, f: int, m: int, segment: str) -> str:
    return f"R{r} F{f} M{m} ({segment.replace('_', ' ')})"
