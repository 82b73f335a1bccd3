"""Agreed service-level targets and the rule that a month misses them: pure, no database.

A target is a floor for the shares that should be high (on-time, completion, fill rate...) and a ceiling for
those that should be low (damage, loss, complaints, corrections, resolution time). A measure that could not be
measured in the month (None) misses nothing: no promise, no judgement."""

from __future__ import annotations

from crm_common.events import service_levels
from crm_scoring.model.scores import AGREED_TIERS

FLOORS, CEILINGS, MEASURES = service_levels.FLOORS, service_levels.CEILINGS, service_levels.MEASURES  # the events' one list

# The right level, not the highest (service costs money): key accounts are promised more than small customers.
DEFAULT_TARGETS: dict[str, dict[str, float]] = {
    "key_account": {
        "on_time_pickup_pct": 95,
        "on_time_delivery_pct": 95,
        "order_completion_pct": 90,
        "fill_rate_pct": 98,
        "urgent_completion_pct": 95,
        "documents_on_time_pct": 95,
        "damage_rate_pct": 0.5,
        "loss_rate_pct": 0.1,
        "complaints_per_100_orders": 2,
        "billing_corrections": 2,
        "mean_resolution_hours": 24,
    },
    "ordinary": {
        "on_time_pickup_pct": 90,
        "on_time_delivery_pct": 90,
        "order_completion_pct": 85,
        "fill_rate_pct": 95,
        "urgent_completion_pct": 90,
        "documents_on_time_pct": 90,
        "damage_rate_pct": 1,
        "loss_rate_pct": 0.2,
        "complaints_per_100_orders": 5,
        "billing_corrections": 5,
        "mean_resolution_hours": 48,
    },
    "small": {"on_time_delivery_pct": 85, "damage_rate_pct": 2, "loss_rate_pct": 0.5, "complaints_per_100_orders": 10},
}

AT_RISK_REFUSED = (
    "service-level targets of at_risk are no longer used: a month is judged against the targets of the customer's "
    "agreed (commercial) tier, key_account, ordinary or small, never against at_risk, which follows churn risk and so "
    "the breaches themselves (the judgement depended on the order events arrived in); remove at_risk and put its "
    "figures in the tiers it should apply to (docs/scoring.md, 'Service levels')"
)


def check_targets(targets: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Settings validation: agreed tiers only, known measures, percentages within 0-100, nothing negative."""
    if "at_risk" in targets:
        raise ValueError(AT_RISK_REFUSED)
    unknown_tiers = set(targets) - set(AGREED_TIERS)
    if unknown_tiers:
        raise ValueError(f"service-level targets for unknown tiers {sorted(unknown_tiers)}; agreed tiers: {', '.join(AGREED_TIERS)}")
    for tier, per_measure in targets.items():
        unknown = set(per_measure) - set(MEASURES)
        if unknown:
            raise ValueError(f"service-level targets of {tier}: unknown measures {sorted(unknown)}; known: {', '.join(MEASURES)}")
        for measure, value in per_measure.items():
            problem = service_levels.target_problem(measure, value)
            if problem is not None:
                raise ValueError(f"service-level target {tier}.{measure} = {value} is out of range: {problem}")
    return targets


def agreed_targets(defaults: dict[str, dict[str, float]], tier: str, agreement: dict[str, float] | None) -> dict[str, float]:
    """The targets a customer is held to: its tier's defaults, each measure of its agreement (the profile's) in place
    of the default."""
    return {**defaults.get(tier, {}), **(agreement or {})}


def missed_targets(record: dict, targets: dict[str, float]) -> list[dict]:
    """[{measure, target, actual}] of every target the record misses, in MEASURES order."""
    missed = []
    for measure in MEASURES:
        target, actual = targets.get(measure), record.get(measure)
        if target is None or actual is None:
            continue
        if (actual < target) if measure in FLOORS else (actual > target):
            missed.append({"measure": measure, "target": float(target), "actual": float(actual)})
    return missed


def summary(missed: list[dict]) -> str:
    return "; ".join(f"{m['measure']} {m['actual']:g} (target {'>=' if m['measure'] in FLOORS else '<='} {m['target']:g})" for m in missed)
