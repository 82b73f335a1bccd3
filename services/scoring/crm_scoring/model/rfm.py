"""RFM: recency, frequency and monetary value as 1-5 quintile scores, and the usual named segments.

A customer's score on one dimension is 1 + floor(5 * k / n), where k is the number of customers of
the population with a strictly worse value (larger recency; smaller frequency or monetary) and n the
population size: the worst fifth scores 1, the best fifth 5, ties share a score. The population's
cut points (the smallest value reaching scores 2..5) are stored, so one customer can be scored between
recomputes with exactly the same rule.

R is ranked over everyone who ever ordered; F and M only over the customers active in the window (at
least one order), because a 3PL's base is mostly dormant shippers: ranked over everyone, every active
customer would take F and M of 4 or 5. Customers with no order in the window get F = M = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Breakpoints:
    """For 'higher is better' values: the least value scoring 2, 3, 4, 5 (None: that score is unreachable)."""

    cuts: tuple[float | None, float | None, float | None, float | None]
    higher_is_better: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"cuts": list(self.cuts), "higher_is_better": self.higher_is_better}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Breakpoints:
        return cls(tuple(data["cuts"]), data["higher_is_better"])


def breakpoints(values: npt.ArrayLike, *, higher_is_better: bool = True) -> Breakpoints:
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
    two, three, four, five = cuts
    return Breakpoints((two, three, four, five), higher_is_better)


def score_many(values: npt.ArrayLike, bp: Breakpoints) -> np.ndarray:
    """1 + the number of cut points each value reaches."""
    values = np.asarray(values, dtype=float)
    result = np.ones(values.size, dtype=int)
    for cut in bp.cuts:
        if cut is not None:
            result += (values >= cut) if bp.higher_is_better else (values <= cut)
    return result


# The (R, F, M) -> segment map, as data. FM is floor((F + M) / 2), so F and M weigh the same and a segment that needs
# "FM 5" needs both at 5. Rows are R = 5 (bought most recently) down to 1; columns FM = 1..5. The names follow the
# usual RFM segment table; "champions" needs F = M = 5, so they are at most the best fifth of the active customers.
SEGMENT_GRID: dict[int, tuple[str, str, str, str, str]] = {
    #     FM = 1            FM = 2                FM = 3                FM = 4      FM = 5
    5: ("new", "potential_loyalist", "potential_loyalist", "loyal", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "champions"),
    3: ("about_to_sleep", "need_attention", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "about_to_sleep", "at_risk", "at_risk", "cant_lose"),
    1: ("lost", "hibernating", "at_risk", "cant_lose", "cant_lose"),
}
# customers with no order in the window (F = M = 0) are segmented by recency alone
DORMANT_SEGMENTS: dict[int, str] = {5: "hibernating", 4: "hibernating", 3: "hibernating", 2: "hibernating", 1: "lost"}


def frequency_key(orders: npt.ArrayLike, revenue: npt.ArrayLike) -> np.ndarray:
    """What F ranks: the orders in the window, ties broken by revenue (orders + L / (1 + L), L = ln(1 + revenue), which
    stays below the next whole order). Order counts tie a lot (many shippers order once or twice a year); without
    the tie-break one score would hold far more than a fifth of the active customers."""
    spend = np.log1p(np.maximum(np.asarray(revenue, dtype=float), 0.0))
    return np.asarray(orders, dtype=float) + spend / (1.0 + spend)


def active_scores(values: npt.ArrayLike, active: npt.ArrayLike, bp: Breakpoints) -> np.ndarray:
    """F or M: the quintile score among the active customers, 0 for the others."""
    return np.where(np.asarray(active, dtype=bool), score_many(values, bp), 0)


SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
)


def segment(r: int, f: int, m: int) -> str:
    """Named segment of one customer's scores (F = M = 0: no order in the window)."""
    if f == 0:
        return DORMANT_SEGMENTS[r]
    return SEGMENT_GRID[r][(f + m) // 2 - 1]


def _lookup_table() -> np.ndarray:
    """table[r, f, m] = segment(r, f, m) for r 1..5 and f, m 0..5 (f = 0 with m = 0 only)."""
    table = np.full((6, 6, 6), None, dtype=object)
    for r in range(1, 6):
        table[r, 0, 0] = segment(r, 0, 0)
        for f in range(1, 6):
            for m in range(1, 6):
                table[r, f, m] = segment(r, f, m)
    return table


_TABLE = _lookup_table()


def segment_many(r: npt.ArrayLike, f: npt.ArrayLike, m: npt.ArrayLike) -> np.ndarray:
    """segment() for arrays of scores."""
    return _TABLE[np.asarray(r, dtype=np.int64), np.asarray(f, dtype=np.int64), np.asarray(m, dtype=np.int64)]
