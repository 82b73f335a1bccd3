import numpy as np
import pytest

from crm_scoring.model import gamma_gamma as gg
from crm_scoring.model.gamma_gamma import GammaGammaParams


def test_fit_recovers_parameters_from_simulated_spend():
    true = GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
    rng = np.random.default_rng(3)
    x = rng.integers(1, 15, size=60_000)
    m = gg.simulate(true, x, rng=rng)
    fit = gg.fit(x, m)
    fitted = fit.params
    # p, q and gamma trade off against each other: each within 15%, the implied mean spend within 3%
    assert fitted.p == pytest.approx(true.p, rel=0.15)
    assert fitted.q == pytest.approx(true.q, rel=0.15)
    assert fitted.gamma == pytest.approx(true.gamma, rel=0.15)
    mean = lambda q: q.p * q.gamma / (q.q - 1)  # noqa: E731
    assert mean(fitted) == pytest.approx(mean(true), rel=0.03)
    assert fit.log_likelihood >= float(gg.individual_log_likelihood(true, x, m).sum())


def test_expected_value_shrinks_towards_the_population_mean():
    params = GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
    population_mean = params.p * params.gamma / (params.q - 1)  # 30
    assert gg.expected_average_value(params, [0], [0.0])[0] == pytest.approx(population_mean)
    one, many = gg.expected_average_value(params, [1, 50], [100.0, 100.0])
    assert population_mean < one < many < 100.0
    # the closed form: p (gamma + x m) / (p x + q - 1)
    assert one == pytest.approx(6 * (15 + 100) / (6 + 3))


def test_the_fits_likelihood_is_the_per_customer_likelihood_to_the_last_bit():
    rng = np.random.default_rng(5)
    x = rng.integers(1, 200, 5000).astype(float)
    m = rng.lognormal(4, 1, 5000)
    likelihood = gg._Likelihood(x, m)
    for _ in range(20):
        params = GammaGammaParams(*np.exp(rng.normal(0, 2, 3)))
        assert likelihood.total(params) == float(np.sum(gg.individual_log_likelihood(params, x, m)))
