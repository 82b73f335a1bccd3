"""BG/NBD: closed forms on hand-computed cases, and parameter recovery from simulated data."""

import math

import numpy as np
import pytest

from crm_scoring.model import bgnbd
from crm_scoring.model.bgnbd import BgNbdParams


def test_p_alive_matches_hand_computed_closed_form():
    params = BgNbdParams(r=1.0, alpha=2.0, a=1.0, b=3.0)
    # odds = a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x) = 1/4 * (8/6)^3 = 16/27  ->  P = 27/43
    assert bgnbd.p_alive(params, [2], [4.0], [6.0])[0] == pytest.approx(27 / 43, rel=1e-12)
    # no repeat purchase: the customer cannot have dropped out yet
    assert bgnbd.p_alive(params, [0], [0.0], [6.0])[0] == 1.0
    other = BgNbdParams(r=0.5, alpha=1.0, a=2.0, b=2.0)
    # odds = 2/2 * (4/2)^1.5 = 2*sqrt(2)
    assert bgnbd.p_alive(other, [1], [1.0], [3.0])[0] == pytest.approx(1 / (1 + 2 * math.sqrt(2)), rel=1e-12)


def test_p_alive_falls_as_the_silence_grows():
    params = BgNbdParams(r=0.8, alpha=6.0, a=0.9, b=3.0)
    values = bgnbd.p_alive(params, [5, 5, 5], [20.0, 20.0, 20.0], [21.0, 40.0, 80.0])
    assert values[0] > values[1] > values[2]


def test_log_likelihood_hand_computed():
    params = BgNbdParams(r=1.0, alpha=2.0, a=1.0, b=3.0)
    # x = 0: L = (alpha/(alpha+T))^r
    assert bgnbd.individual_log_likelihood(params, [0], [0.0], [6.0])[0] == pytest.approx(math.log(2 / 8))
    # x = 1, t_x = 2, T = 6, r = a = 1: L = B(1,4)/B(1,3) * 1*2/(8^2) + B(2,3)/B(1,3) * 2/(4^2)
    b = lambda p, q: math.gamma(p) * math.gamma(q) / math.gamma(p + q)  # noqa: E731
    expected = b(1, 4) / b(1, 3) * 2 / 64 + b(2, 3) / b(1, 3) * 2 / 16
    assert bgnbd.individual_log_likelihood(params, [1], [2.0], [6.0])[0] == pytest.approx(math.log(expected))


def test_conditional_expectation_of_a_fresh_customer_is_the_unconditional_one():
    params = BgNbdParams(r=0.8, alpha=6.0, a=1.4, b=3.0)
    for t in (1.0, 10.0, 52.0):
        assert bgnbd.conditional_expected_purchases(params, t, [0], [0.0], [0.0])[0] == pytest.approx(bgnbd.expected_purchases(params, t))


def test_expected_purchases_agree_with_simulation():
    params = BgNbdParams(r=0.8, alpha=6.0, a=1.4, b=3.0)
    rng = np.random.default_rng(11)
    T = np.full(100_000, 30.0)
    x, _ = bgnbd.simulate(params, T, rng=rng)
    assert x.mean() == pytest.approx(float(bgnbd.expected_purchases(params, 30.0)), rel=0.03)


@pytest.mark.parametrize(
    "true, seed", [(BgNbdParams(r=0.8, alpha=6.0, a=0.9, b=3.0), 0), (BgNbdParams(r=0.24, alpha=4.41, a=0.79, b=2.43), 1)]
)
def test_fit_recovers_known_parameters_within_ten_percent(true, seed):
    rng = np.random.default_rng(seed)
    T = rng.uniform(30, 80, 20_000)
    x, t_x = bgnbd.simulate(true, T, rng=rng)
    fitted = bgnbd.fit(x, t_x, T)
    for name, value in true.as_dict().items():
        assert getattr(fitted.params, name) == pytest.approx(value, rel=0.10), name
    # the fit is a maximum: the true parameters are no better
    assert fitted.log_likelihood >= bgnbd.log_likelihood(true, x, t_x, T) - 1e-6


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        bgnbd.p_alive(BgNbdParams(1, 1, 1, 1), [1], [5.0], [3.0])
    with pytest.raises(ValueError):
        bgnbd.fit([], [], [])


def test_the_fits_likelihood_is_the_per_customer_likelihood_to_the_last_bit():
    # the fit evaluates the special functions on the distinct x, t_x, T only; its sums must be exactly those of equation 6
    rng = np.random.default_rng(4)
    T = rng.integers(1, 700, 5000) / 7.0
    t_x = np.floor(T * rng.random(5000) * 7) / 7.0
    x = np.where(t_x > 0, rng.integers(1, 300, 5000), 0).astype(float)
    ux, ut, uT, w = bgnbd._compress(x, t_x, T)
    likelihood = bgnbd._Likelihood(ux, ut, uT, w)
    for _ in range(20):
        params = BgNbdParams(*np.exp(rng.normal(0, 2, 4)))
        assert np.array_equal(likelihood.individual(params), bgnbd.individual_log_likelihood(params, ux, ut, uT))
        assert likelihood.total(params) == bgnbd.log_likelihood(params, ux, ut, uT, w)


def test_expected_purchases_stay_finite_near_the_no_dropout_limit():
    """A fit on perfectly regular buyers (every customer orders every 75 days) ran to r, alpha -> infinity and
    a, b -> 0; the closed form then overflowed to NaN, and the churn explanation failed to render. The expectation
    must be the gamma-Poisson limit there: (r + x) / (alpha + T) per week, times P(alive)."""
    params = BgNbdParams(r=226908927.625371, alpha=2597555632.736632, a=9.357622968840175e-14, b=2.3386299989867495e-06)
    x, t_x, T = np.array([7.0, 7.0]), np.array([75.0, 75.0]), np.array([75.0, 80.14285714])
    horizon = 90 / 7
    expected = bgnbd.conditional_expected_purchases(params, horizon, x, t_x, T)
    assert np.isfinite(expected).all()
    limit = (params.r + x) / (params.alpha + T) * horizon * bgnbd.p_alive(params, x, t_x, T)
    assert np.allclose(expected, limit) and 1.0 < expected[0] < 1.3  # one order per 75 days: about 1.2 in 90 days


def test_ordinary_parameters_keep_the_closed_form():
    params = BgNbdParams(r=0.24, alpha=4.41, a=0.79, b=2.43)
    x, t_x, T = np.array([2.0, 0.0]), np.array([30.43, 0.0]), np.array([38.86, 38.86])
    expected = bgnbd.conditional_expected_purchases(params, 39.0, x, t_x, T)
    poisson_limit = (params.r + x) / (params.alpha + T) * 39.0 * bgnbd.p_alive(params, x, t_x, T)
    assert np.isfinite(expected).all() and not np.allclose(expected, poisson_limit)
