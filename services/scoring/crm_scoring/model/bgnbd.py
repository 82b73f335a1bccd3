"""BG/NBD ("beta-geometric / negative binomial distribution") model of repeat buying.

Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
Pareto/NBD Model", Marketing Science 24(2), 275-284. Notation of the paper:

* while active, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha);
* after each purchase the customer drops out with probability p ~ Beta(a, b);
* per customer we observe x (repeat purchases), t_x (time of the last purchase) and T (time
  since the first purchase), all measured from the first purchase.

Everything here works on numpy arrays; time is in whatever unit the caller uses (the service uses weeks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize
from scipy.special import betaln, gammaln, hyp2f1

# A parameter of the closed forms: one value, or one per customer.
Number = float | np.ndarray


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class BgNbdFit:
    params: BgNbdParams
    log_likelihood: float
    customers: int
    converged: bool
    iterations: int


def _arrays(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    if np.any(x < 0) or np.any(t_x < 0) or np.any(T < t_x - 1e-9):
        raise ValueError("need x >= 0 and 0 <= t_x <= T")
    return x, t_x, T


def individual_log_likelihood(params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> np.ndarray:
    """ln L(r, alpha, a, b | x, t_x, T) per customer (equation 6 of the paper)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


def log_likelihood(
    params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> float:
    ll = individual_log_likelihood(params, x, t_x, T)
    return float(np.sum(ll if weights is None else ll * np.asarray(weights, dtype=float)))


def _compress(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Identical (x, t_x, T) rows share one likelihood term: fitting gets much faster on real data."""
    stacked = np.column_stack([x, t_x, T])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return unique[:, 0], unique[:, 1], unique[:, 2], counts.astype(float)


class _Distinct:
    """An array as its distinct values and an index back: a function of the array is computed on the few distinct
    values (x, t_x and T take a few hundred each over 100k customers) and gathered, with identical results."""

    def __init__(self, values: np.ndarray):
        self.values, self.index = np.unique(values, return_inverse=True)

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return fn(self.values)[self.index]


class _Likelihood:
    """individual_log_likelihood for fixed data and many parameter sets (the optimiser's calls): the same
    expression, term by term, with the special functions and logarithms evaluated on the distinct values only."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray):
        self.x, self.t_x, self.T, self.weights = x, t_x, T, weights
        self.dx, self.dt_x, self.dT = _Distinct(x), _Distinct(t_x), _Distinct(T)
        self.repeat = x > 0

    def individual(self, params: BgNbdParams) -> np.ndarray:
        x = self.x
        r, alpha, a, b = params.r, params.alpha, params.a, params.b
        a1 = self.dx.map(lambda v: gammaln(r + v)) - gammaln(r) + r * np.log(alpha)
        a2 = self.dx.map(lambda v: betaln(a, b + v)) - betaln(a, b)
        a3 = -(r + x) * self.dT.map(lambda v: np.log(alpha + v))
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(
                self.repeat,
                np.log(a)
                - self.dx.map(lambda v: np.log(np.maximum(b + v - 1, 1e-300)))
                - (r + x) * self.dt_x.map(lambda v: np.log(alpha + v)),
                -np.inf,
            )
        return a1 + a2 + np.logaddexp(a3, a4)

    def total(self, params: BgNbdParams) -> float:
        return float(np.sum(self.individual(params) * self.weights))


def fit(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, *, initial: BgNbdParams | None = None, penalizer: float = 0.0) -> BgNbdFit:
    """Maximum-likelihood estimates of (r, alpha, a, b) with scipy.optimize on log-parameters."""
    x, t_x, T = _arrays(x, t_x, T)
    if x.size == 0:
        raise ValueError("no customers to fit")
    ux, ut, uT, w = _compress(x, t_x, T)
    n = w.sum()
    start = initial or BgNbdParams(r=1.0, alpha=max(float(np.mean(T)), 1e-3), a=1.0, b=1.0)
    theta0 = np.log([start.r, start.alpha, start.a, start.b])
    likelihood = _Likelihood(ux, ut, uT, w)

    def negative(theta: np.ndarray) -> float:
        theta = np.clip(theta, -30, 30)
        p = BgNbdParams(*np.exp(theta))
        value = -likelihood.total(p) / n
        if penalizer:
            value += penalizer * float(np.sum(np.exp(theta) ** 2))
        return value if np.isfinite(value) else 1e300

    # quasi-Newton first (few likelihood evaluations), then a short simplex polish from its answer
    result = optimize.minimize(negative, theta0, method="L-BFGS-B", options={"maxiter": 500})
    refined = optimize.minimize(negative, result.x, method="Nelder-Mead", options={"maxiter": 600, "xatol": 1e-6, "fatol": 1e-10})
    best = refined if refined.fun <= result.fun else result
    params = BgNbdParams(*np.exp(np.clip(best.x, -30, 30)))
    return BgNbdFit(
        params=params,
        log_likelihood=log_likelihood(params, ux, ut, uT, w),
        customers=int(n),
        converged=bool(result.success or refined.success),
        iterations=int(result.nit) + int(getattr(refined, "nit", 0)),
    )


def p_alive(params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> np.ndarray:
    """P(still active | x, t_x, T) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700)), 0.0)
    return 1.0 / (1.0 + odds)


NEAR_ONE = 1e-4  # |a - 1| below this: the removable singularity of the closed form at a = 1


def _alive_expectation_closed_form(r: Number, alpha: Number, a: float, b: Number, t: Number) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        head = (a + b - 1) / (a - 1)
        body = 1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return head * body


def alive_expectation(r: Number, alpha: Number, a: float, b: Number, t: Number) -> np.ndarray:
    """E[(1 - (alpha / (alpha + p t))^r) / p] for p ~ Beta(a, b): the purchases expected in the next t of a customer
    who is alive now and whose rate is Gamma(r, alpha) (each purchase followed by dropout with probability p).

    Closed form (a + b - 1) / (a - 1) [1 - (alpha / (alpha + t))^r 2F1(r, b; a + b - 1; t / (alpha + t))], valid
    for every a other than 1: for a < 1 both factors are negative. At a = 1 both vanish and the function is
    analytic in a, so within NEAR_ONE of 1 it is interpolated linearly between a = 1 -/+ NEAR_ONE (error of the
    order NEAR_ONE^2, far below the closed form's own rounding there)."""
    if abs(a - 1) >= NEAR_ONE:
        return _alive_expectation_closed_form(r, alpha, a, b, t)
    below = _alive_expectation_closed_form(r, alpha, 1 - NEAR_ONE, b, t)
    above = _alive_expectation_closed_form(r, alpha, 1 + NEAR_ONE, b, t)
    return below + (above - below) * ((a - (1 - NEAR_ONE)) / (2 * NEAR_ONE))


def expected_purchases(params: BgNbdParams, t: npt.ArrayLike) -> np.ndarray:
    """E[X(t)] for a customer just acquired (equation 9 of the paper; at a = 1 its limit)."""
    t = np.asarray(t, dtype=float)
    return alive_expectation(params.r, params.alpha, params.a, params.b, t)


def conditional_expected_purchases(
    params: BgNbdParams, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next t time units (equation 10 of the paper).

    Equation 10 is P(alive | x, t_x, T) times the expectation of a customer alive now, whose posterior is
    lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x): alive_expectation(r + x, alpha + T, a, b + x, t)."""
    x, t_x, T = _arrays(x, t_x, T)
    t = np.asarray(t, dtype=float)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    alive = p_alive(params, x, t_x, T)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = np.maximum(alive_expectation(r + x, alpha + T, a, b + x, t) * alive, 0.0)
    failed = ~np.isfinite(expected)
    if failed.any():
        # Near the no-dropout limit (a, b -> 0 with r, alpha -> infinity, as a fit on perfectly regular buyers gives)
        # the closed form overflows (hyp2f1 of huge arguments). There a customer still alive buys at the gamma-Poisson
        # posterior rate (r + x) / (alpha + T); dropout in the horizon is negligible by the same parameters.
        limit = (r + x) / (alpha + T) * t * alive
        expected = np.where(failed, limit, expected)
    return expected


def simulate(params: BgNbdParams, T: npt.ArrayLike, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) for customers observed for T time units each, from the model's own story."""
    T = np.asarray(T, dtype=float)
    n = T.size
    lam = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    p = rng.beta(params.a, params.b, size=n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    clock = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        with np.errstate(divide="ignore"):
            clock[idx] += rng.exponential(1.0, size=idx.size) / lam[idx]
        within = clock[idx] <= T[idx]
        bought = idx[within]
        x[bought] += 1
        t_x[bought] = clock[bought]
        active[idx[~within]] = False
        dies = rng.random(bought.size) < p[bought]
        active[bought[dies]] = False
    return x, t_x
