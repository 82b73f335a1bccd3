"""Elementwise arithmetic for the score arrays that gives what Python's scalar arithmetic gives, bit for bit.

numpy's SIMD `log1p` / `tanh` differ from `math`'s in the last bit and `np.round` is not Python's correctly rounded
`round`; the stored scores and the numbers in the explanations are those of Python's, so the formulas use these.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np


def clip01(values: np.ndarray) -> np.ndarray:
    """min(1.0, max(0.0, v)) with Python's semantics (NaN -> 0.0)."""
    low = np.where(values > 0.0, values, 0.0)
    return np.where(low < 1.0, low, 1.0)


def rounded_array(values: Any, digits: int) -> np.ndarray:
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


def python_round(values: Any, digits: int) -> list[float]:
    """Python's round() of each value, as a list of floats."""
    rounded: list[float] = rounded_array(values, digits).tolist()
    return rounded


def each(fn: Callable[[float], float], values: np.ndarray) -> np.ndarray:
    """fn (a `math` function) of each value: numpy's vectorised versions differ from `math`'s in the last bit."""
    return np.fromiter(map(fn, values.tolist()), dtype=float, count=values.size)


def log1p(values: np.ndarray) -> np.ndarray:
    return each(math.log1p, values)


def tanh(values: np.ndarray) -> np.ndarray:
    return each(math.tanh, values)
