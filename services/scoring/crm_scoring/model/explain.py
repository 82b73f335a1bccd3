"""Every score travels with its inputs and a sentence a person can read."""
from __future__ import annotations

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
