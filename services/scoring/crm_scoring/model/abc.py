"""ABC(D) classification by cumulative contribution, and the Pareto report.

Customers are ranked by their contribution (revenue or margin over the window, by config), largest
first. With n customers that contribute anything, the first ceil(n * a) are A, up to ceil(n * (a + b))
are B, up to ceil(n * (a + b + c)) are C, the rest D. The cut-offs are stored as contribution
thresholds, so a single customer can be classed between population recomputes and ties always share
the better class. Customers that contribute nothing are D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

CLASSES = ("A", "B", "C", "D")


@dataclass(frozen=True)
class AbcThresholds:
    """The smallest contribution still in A, B and C (None: the class is empty)."""

    a: float | None
    b: float | None
    c: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"A": self.a, "B": self.b, "C": self.c}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AbcThresholds:
        return cls(data.get("A"), data.get("B"), data.get("C"))


def class_counts(n: int, a: float, b: float, c: float) -> tuple[int, int, int]:
    """Cumulative numbers of customers in A, A+B and A+B+C."""
    eps = 1e-9  # 100 * 0.05 is 5.000000000000001 in floating point
    return (
        min(n, math.ceil(n * a - eps)),
        min(n, math.ceil(n * (a + b) - eps)),
        min(n, math.ceil(n * (a + b + c) - eps)),
    )


def thresholds(contributions: npt.ArrayLike, a: float = 0.01, b: float = 0.04, c: float = 0.15) -> AbcThresholds:
    values = np.asarray(contributions, dtype=float)
    values = np.sort(values[values > 0])[::-1]
    n = values.size
    if n == 0:
        return AbcThresholds(None, None, None)
    na, nab, nabc = class_counts(n, a, b, c)

    def pick(k: int) -> float | None:
        return float(values[k - 1]) if k > 0 else None

    ta, tb, tc = pick(na), pick(nab), pick(nabc)
    # an empty class (its cumulative count did not grow) has no threshold of its own
    return AbcThresholds(ta, tb if nab > na else None, tc if nabc > nab else None)


def classify_many(contributions: npt.ArrayLike, t: AbcThresholds) -> np.ndarray:
    """The class of each contribution: the best class whose threshold it reaches; D for nothing (or NaN) contributed."""
    values = np.nan_to_num(np.asarray(contributions, dtype=float), nan=0.0)
    out = np.full(values.size, "D", dtype=object)
    positive = values > 0
    for label, threshold in (("C", t.c), ("B", t.b), ("A", t.a)):  # best class last so it wins
        if threshold is not None:
            out[positive & (values >= threshold)] = label
    return out


def pareto_report(contributions: npt.ArrayLike, classes: npt.ArrayLike, *, curve_points: int = 20) -> dict[str, Any]:
    """Share of customers and share of contribution per class, and the cumulative (Pareto) curve."""
    values = np.nan_to_num(np.asarray(contributions, dtype=float), nan=0.0)
    classes = np.asarray(classes, dtype=object)
    n = values.size
    total = float(values[values > 0].sum())
    rows: list[dict[str, Any]] = []
    for label in CLASSES:
        mask = classes == label
        contribution = float(values[mask].clip(min=0).sum())
        rows.append(
            {
                "class": label,
                "customers": int(mask.sum()),
                "customer_share": round(mask.sum() / n, 6) if n else 0.0,
                "contribution": round(contribution, 2),
                "contribution_share": round(contribution / total, 6) if total else 0.0,
            }
        )
    ordered = np.sort(values.clip(min=0))[::-1]
    cumulative = np.cumsum(ordered)
    curve = [{"customer_share": 0.0, "contribution_share": 0.0}]
    if n and total:
        for i in range(1, curve_points + 1):
            k = math.ceil(n * i / curve_points)
            curve.append({"customer_share": round(k / n, 6), "contribution_share": round(float(cumulative[k - 1]) / total, 6)})

    def top_share(fraction: float) -> float:
        if not n or not total:
            return 0.0
        k = max(1, math.ceil(n * fraction - 1e-9))
        return round(float(cumulative[k - 1]) / total, 6)

    return {
        "customers": n,
        "total_contribution": round(total, 2),
        "classes": rows,
        "top_1pct_share": top_share(0.01),
        "top_20pct_share": top_share(0.20),
        "curve": curve,
    }
