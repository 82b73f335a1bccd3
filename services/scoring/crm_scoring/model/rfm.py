"""RFM: recency, frequency and monetary value as 1-5 quintile scores, and the usual named segments.

A customer's score on one dimension is 1 + floor(5 * k / n), where k is the number of customers of
the population with a strictly worse value (larger recency; smaller frequency or monetary) and n the
population size: the worst fifth scores 1, the best fifth 5, ties share a score. The population's
cut points (the smallest value reaching scores 2..5) are stored, so one customer can be scored between
recomputes with exactly the same rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Breakpoints:
    """For 'higher is better' values: the least value scoring 2, 3, 4, 5 (None: that score is unreachable)."""

    cuts: tuple[float | None, float | None, float | None, float | None]
    higher_is_better: bool = True

    def as_dict(self) -> dict:
        return {"cuts": list(self.cuts), "higher_is_better": self.higher_is_better}

    @classmethod
    def from_dict(cls, data: dict) -> "Breakpoints":
        return cls(tuple(data["cuts"]), data["higher_is_better"])


def quintile_scores(values) -> np.ndarray:
    """The definition, computed directly (higher is better)."""
    values = np.asarray(values, dtype=float)
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=int)
    ordered = np.sort(values)
    worse = np.searchsorted(ordered, values, side="left")
    return np.minimum(5, 1 + (5 * worse) // n).astype(int)


def breakpoints(values, *, higher_is_better: bool = True) -> Breakpoints:
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return Breakpoints((None, None, None, None), higher_is_better)
    signed = values if higher_is_better else -values
    ordered = np.sort(signed)
    n = ordered.size
    distinct = np.unique(ordered)
    worse = np.searchsorted(ordered, distinct, side="left")
    scores = np.minimum(5, 1 + (5 * worse) // n)
    cuts: list[float | None] = []
    for s in (2, 3, 4, 5):
        reach = distinct[scores >= s]
        if reach.size == 0:
            cuts.append(None)
        else:
            cut = float(reach[0])
            cuts.append(cut if higher_is_better else -cut)
    return Breakpoints(tuple(cuts), higher_is_better)


def score(value: float, bp: Breakpoints) -> int:
    result = 1
    for cut in bp.cuts:
        if cut is None:
            continue
        if (value >= cut) if bp.higher_is_better else (value <= cut):
            result += 1
    return result


def score_many(values, bp: Breakpoints) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    result = np.ones(values.size, dtype=int)
    for cut in bp.cuts:
        if cut is not None:
            result += (values >= cut) if bp.higher_is_better else (values <= cut)
    return result


SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "need_attention",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
)


def segment(r: int, f: int, m: int) -> str:
    """Named segment from the three scores; fm is the mean of F and M. First matching rule wins:

    champions R>=4, fm>=4; cant_lose R<=2, fm>=4.5; at_risk R<=2, fm>=3; loyal R>=3, fm>=3;
    potential_loyalist R>=4; need_attention R=3; hibernating R=2; lost R=1.
    """
    fm = (f + m) / 2
    if r >= 4 and fm >= 4:
        return "champions"
    if r <= 2 and fm >= 4.5:
        return "cant_lose"
    if r <= 2 and fm >= 3:
        return "at_risk"
    if r >= 3 and fm >= 3:
        return "loyal"
    if r >= 4:
        return "potential_loyalist"
    if r == 3:
        return "need_attention"
    if r == 2:
        return "hibernating"
    return "lost"


def segment_many(r, f, m) -> np.ndarray:
    return np.array([segment(int(a), int(b), int(c)) for a, b, c in zip(r, f, m)], dtype=object)


def describe(r: int, f: int, m: int) -> str:
    return f"R{r} F{f} M{m} ({segment(r, f, m).replace('_', ' ')})"
