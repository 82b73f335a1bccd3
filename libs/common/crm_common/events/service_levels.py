"""The service-level measures a target can be agreed on (issue 20), shared by the profile, which stores a customer's
agreement and sends it in its events, and scoring, which measures the months and judges them.

A target is a floor for the shares that should be high (on-time, completion, fill rate...) and a ceiling for
those that should be low (damage, loss, complaints, corrections, resolution time). Every target is a finite
number, not negative; a percentage (`_pct`) is at most 100."""

from __future__ import annotations

import math
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

FLOORS = (
    "on_time_pickup_pct",
    "on_time_delivery_pct",
    "order_completion_pct",
    "fill_rate_pct",
    "urgent_completion_pct",
    "documents_on_time_pct",
)
CEILINGS = ("damage_rate_pct", "loss_rate_pct", "complaints_per_100_orders", "billing_corrections", "mean_resolution_hours")
MEASURES = FLOORS + CEILINGS

Measure = Literal[
    "on_time_pickup_pct",
    "on_time_delivery_pct",
    "order_completion_pct",
    "fill_rate_pct",
    "urgent_completion_pct",
    "documents_on_time_pct",
    "damage_rate_pct",
    "loss_rate_pct",
    "complaints_per_100_orders",
    "billing_corrections",
    "mean_resolution_hours",
]
assert get_args(Measure) == MEASURES  # one list: the Literal is what the schemas show


def target_problem(measure: str, value: float) -> str | None:
    """Why `value` cannot be the target of `measure`, or None when it can."""
    if measure not in MEASURES:
        return f"unknown measure {measure!r}; known: {', '.join(MEASURES)}"
    if not math.isfinite(value) or value < 0:
        return f"the target of {measure} must be a number >= 0, got {value}"
    if measure.endswith("_pct") and value > 100:
        return f"the target of {measure} is a percentage (0-100), got {value}"
    return None


def _targets(values: dict[str, float]) -> dict[str, float]:
    for measure, value in values.items():
        problem = target_problem(measure, value)
        if problem is not None:
            raise PydanticCustomError("target_out_of_range", problem)
    return values


ServiceLevelTargets = Annotated[
    dict[Measure, Annotated[float, Field(ge=0, allow_inf_nan=False)]],
    AfterValidator(_targets),
    Field(description="Target per measure (floors for the shares that should be high, ceilings for the others)."),
]
