"""Gamma-Gamma model of spend per transaction.

Fader, Hardie and Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
Journal of Marketing Research 42(4), 415-430; and Fader and Hardie, "The Gamma-Gamma Model of
Monetary Value" (2013 note). Per customer: x transactions with mean value m_x; a transaction's value
is Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers. Assumes spend independent of frequency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize
from scipy.special import gammaln


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    customers: int
    converged: bool


def individual_log_likelihood(params: GammaGammaParams, x: npt.ArrayLike, m_x: npt.ArrayLike) -> np.ndarray:
    """ln f(m_x | x; p, q, gamma) of the average of x transactions (x >= 1, m_x > 0)."""
    x = np.asarray(x, dtype=float)
    m_x = np.asarray(m_x, dtype=float)
    p, q, g = params.p, params.q, params.gamma
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(g)
        + (p * x - 1) * np.log(m_x)
        + p * x * np.log(x)
        - (p * x + q) * np.log(g + m_x * x)
    )


class _Likelihood:
    """individual_log_likelihood for fixed data and many parameter sets (the optimiser's calls): the same expression,
    term by term, with the logarithms of the data computed once and gammaln on the few distinct x only."""

    def __init__(self, x: np.ndarray, m_x: np.ndarray):
        self.x = x
        self.distinct_x, self.index = np.unique(x, return_inverse=True)
        self.log_m_x = np.log(m_x)
        self.log_x = np.log(x)
        self.spend = m_x * x

    def total(self, params: GammaGammaParams) -> float:
        x = self.x
        p, q, g = params.p, params.q, params.gamma
        px = p * x
        values = (
            gammaln(p * self.distinct_x + q)[self.index]
            - gammaln(p * self.distinct_x)[self.index]
            - gammaln(q)
            + q * np.log(g)
            + (px - 1) * self.log_m_x
            + px * self.log_x
            - (px + q) * np.log(g + self.spend)
        )
        return float(np.sum(values))


def fit(x: npt.ArrayLike, m_x: npt.ArrayLike) -> GammaGammaFit:
    """MLE of (p, q, gamma) on customers with x >= 1 transactions and a positive average value."""
    x = np.asarray(x, dtype=float)
    m_x = np.asarray(m_x, dtype=float)
    keep = (x >= 1) & (m_x > 0) & np.isfinite(m_x)
    x, m_x = x[keep], m_x[keep]
    if x.size < 3:
        raise ValueError("need at least 3 customers with positive spend")
    mean = float(np.mean(m_x))
    theta0 = np.log([2.0, 3.0, mean])
    likelihood = _Likelihood(x, m_x)

    def negative(theta: np.ndarray) -> float:
        params = GammaGammaParams(*np.exp(np.clip(theta, -30, 30)))
        value = -likelihood.total(params) / x.size
        return value if np.isfinite(value) else 1e300

    result = optimize.minimize(negative, theta0, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-10})
    refined = optimize.minimize(negative, result.x, method="L-BFGS-B")
    best = refined if refined.fun <= result.fun else result
    params = GammaGammaParams(*np.exp(np.clip(best.x, -30, 30)))
    return GammaGammaFit(
        params, float(np.sum(individual_log_likelihood(params, x, m_x))), int(x.size), bool(result.success or refined.success)
    )


def expected_average_value(params: GammaGammaParams, x: npt.ArrayLike, m_x: npt.ArrayLike) -> np.ndarray:
    """E[M | x, m_x] = (p (gamma + x m_x)) / (p x + q - 1): the population mean shrunk towards the customer's own.

    A customer with no transactions gets the population mean p gamma / (q - 1).
    """
    x = np.asarray(x, dtype=float)
    m_x = np.nan_to_num(np.asarray(m_x, dtype=float), nan=0.0)
    p, q, g = params.p, params.q, params.gamma
    q = max(q, 1.0 + 1e-6)
    return p * (g + x * m_x) / (p * x + q - 1)


def simulate(params: GammaGammaParams, x: npt.ArrayLike, *, rng: np.random.Generator) -> np.ndarray:
    """Average transaction value of customers with x transactions each, from the model."""
    x = np.asarray(x, dtype=int)
    nu = rng.gamma(params.q, 1.0 / params.gamma, size=x.size)
    # the sum of x Gamma(p, nu) values is Gamma(p x, nu)
    return rng.gamma(params.p * x, 1.0 / nu) / x
