"""BG/NBD against the literature: a Monte Carlo simulation of the process, numerical integration of the definition,
and the `lifetimes` package (test-only, pinned in requirements/dev.lock) as an independent implementation."""

import datetime as dt

import lifetimes  # test-only oracle, pinned in requirements/dev.lock
import lifetimes.utils
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from crm_scoring.model import bgnbd
from crm_scoring.model.bgnbd import BgNbdParams
from crm_scoring.scoring.ingest import day_number
from crm_scoring.scoring.reports import calibration_summary, weekly_cumulative

PARAMETER_SETS = [BgNbdParams(r=0.6, alpha=5.0, a=a, b=b) for a, b in ((0.5, 1.5), (0.8, 2.5), (1.0, 2.0), (1.5, 3.0), (3.0, 6.0))]


def simulate_calibration_and_holdout(params: BgNbdParams, T: np.ndarray, horizon: float, rng: np.random.Generator):
    """The story of the paper, written here independently of the production code: a first purchase at 0, Poisson
    purchases at rate lambda ~ Gamma(r, alpha) while active, dropout with probability p ~ Beta(a, b) after each
    repeat purchase. Returns x, t_x (up to T) and the purchases in (T, T + horizon]."""
    n = T.size
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    clock, x, t_x, holdout = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        i = np.flatnonzero(alive)
        clock[i] += rng.exponential(size=i.size) / lam[i]
        in_calibration = clock[i] <= T[i]
        in_holdout = ~in_calibration & (clock[i] <= T[i] + horizon)
        x[i[in_calibration]] += 1
        t_x[i[in_calibration]] = clock[i[in_calibration]]
        holdout[i[in_holdout]] += 1
        bought = i[in_calibration | in_holdout]
        alive[i[~(in_calibration | in_holdout)]] = False
        alive[bought[rng.random(bought.size) < p[bought]]] = False
    return x, t_x, holdout


@pytest.mark.parametrize("params", PARAMETER_SETS, ids=lambda p: f"a={p.a}")
def test_holdout_purchases_per_calibration_group_agree_with_simulation(params):
    rng = np.random.default_rng(int(params.a * 100))
    T = rng.uniform(20, 60, 40_000)
    horizon = 39.0
    x, t_x, actual = simulate_calibration_and_holdout(params, T, horizon, rng)
    predicted = bgnbd.conditional_expected_purchases(params, horizon, x, t_x, T)
    group = np.minimum(x, 7)
    for g in range(8):
        members = group == g
        if members.sum() < 200:
            continue
        error = actual[members].std(ddof=1) / np.sqrt(members.sum())
        assert abs(predicted[members].mean() - actual[members].mean()) <= 4 * error + 1e-3, (
            g,
            predicted[members].mean(),
            actual[members].mean(),
        )
    assert abs(predicted.sum() - actual.sum()) <= 4 * actual.std(ddof=1) * np.sqrt(actual.size)


def alive_expectation_by_integration(r, alpha, a, b, t) -> float:
    """E[(1 - (alpha / (alpha + p t))^r) / p] for p ~ Beta(a, b), by quadrature of the definition (no closed form)."""

    def f(p):
        return -np.expm1(-r * np.log1p(p * t / alpha)) / p if p > 0 else r * t / alpha

    value, _ = integrate.quad(f, 0, 1, weight="alg", wvar=(a - 1, b - 1), epsabs=0, epsrel=1e-12, limit=200)
    return value / special.beta(a, b)


@pytest.mark.parametrize("a", [0.3, 0.5, 0.8, 0.99995, 1.0, 1.00003, 1.5, 3.0])
def test_expectations_equal_the_integral_of_the_definition_for_every_a(a):
    params = BgNbdParams(r=0.7, alpha=4.0, a=a, b=2.2)
    for t in (1.0, 13.0, 52.0):
        assert bgnbd.expected_purchases(params, t) == pytest.approx(alive_expectation_by_integration(0.7, 4.0, a, 2.2, t), rel=1e-6)
    x, t_x, T = np.array([0.0, 1.0, 4.0, 12.0]), np.array([0.0, 10.0, 20.0, 39.0]), np.array([30.0, 30.0, 45.0, 40.0])
    expected = bgnbd.conditional_expected_purchases(params, 26.0, x, t_x, T)
    alive = bgnbd.p_alive(params, x, t_x, T)
    oracle = [alive_expectation_by_integration(0.7 + xi, 4.0 + Ti, a, 2.2 + xi, 26.0) * pa for xi, Ti, pa in zip(x, T, alive)]
    assert expected == pytest.approx(oracle, rel=1e-6)


def test_near_the_no_dropout_limit_the_expectation_is_the_poisson_rate():
    # a / (a + b) ~ 1e-5: hardly anyone ever drops out; the expectation tends to (r + x) / (alpha + T) t P(alive)
    params = BgNbdParams(r=50.0, alpha=300.0, a=1e-4, b=10.0)
    x, t_x, T = np.array([0.0, 5.0, 20.0]), np.array([0.0, 30.0, 50.0]), np.array([20.0, 40.0, 52.0])
    expected = bgnbd.conditional_expected_purchases(params, 13.0, x, t_x, T)
    poisson = (params.r + x) / (params.alpha + T) * 13.0 * bgnbd.p_alive(params, x, t_x, T)
    assert expected == pytest.approx(poisson, rel=2e-3)


def _lifetimes_model(params: BgNbdParams):
    model = lifetimes.BetaGeoFitter()
    model.params_ = pd.Series(params.as_dict())
    return model


@pytest.mark.parametrize("a", [0.5, 0.8, 1.5, 3.0])
def test_expectations_equal_lifetimes(a):
    params = BgNbdParams(r=0.24, alpha=4.41, a=a, b=2.43)
    rng = np.random.default_rng(5)
    T = rng.uniform(1, 78, 3000)
    x, t_x = bgnbd.simulate(params, T, rng=rng)
    reference = _lifetimes_model(params)
    for t in (13.0, 52.0):
        assert bgnbd.conditional_expected_purchases(params, t, x, t_x, T) == pytest.approx(
            np.asarray(reference.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)), rel=1e-6
        )
        assert float(bgnbd.expected_purchases(params, t)) == pytest.approx(
            float(reference.expected_number_of_purchases_up_to_time(t)), rel=1e-6
        )
    assert bgnbd.p_alive(params, x, t_x, T) == pytest.approx(np.asarray(reference.conditional_probability_alive(x, t_x, T)), rel=1e-6)


def _transaction_log(n_customers: int, seed: int) -> pd.DataFrame:
    """Order days drawn from the model, first orders spread over a year: a log as a back-fill would bring it."""
    rng = np.random.default_rng(seed)
    params = BgNbdParams(r=0.5, alpha=8.0, a=0.7, b=2.0)
    start = day_number(dt.date(2025, 1, 1))
    first = start + rng.integers(0, 365, n_customers)
    rows = []
    lam, p = rng.gamma(params.r, 1 / params.alpha, n_customers), rng.beta(params.a, params.b, n_customers)
    for c in range(n_customers):
        day, rows_c = float(first[c]), [int(first[c])]
        while True:
            day += 7 * rng.exponential() / lam[c]
            if day > start + 700:
                break
            rows_c.append(int(day))
            if rng.random() < p[c]:
                break
        rows.extend((f"C{c}", d) for d in rows_c)
    return pd.DataFrame(rows, columns=["customer_id", "order_day"])


def test_same_log_gives_the_same_summaries_and_parameters_as_lifetimes():
    log = _transaction_log(3000, seed=18)
    calibration_end, holdout_end = dt.date(2025, 12, 31), dt.date(2026, 9, 30)
    ours = calibration_summary(log, calibration_end, holdout_end)
    dated = log.assign(date=pd.to_datetime(log["order_day"], unit="D"), value=1.0)  # (lifetimes needs a value column under pandas 3)
    reference = lifetimes.utils.calibration_and_holdout_data(
        dated,
        "customer_id",
        "date",
        calibration_period_end=pd.Timestamp(calibration_end),
        observation_period_end=pd.Timestamp(holdout_end),
        freq="D",
        freq_multiplier=7,
        monetary_value_col="value",
    )
    reference = reference.reindex(ours.index)
    assert np.allclose(ours["x"], reference["frequency_cal"]) and np.allclose(ours["t_x"], reference["recency_cal"])
    assert np.allclose(ours["T"], reference["T_cal"]) and np.allclose(ours["holdout"], reference["frequency_holdout"])
    fitted = bgnbd.fit(ours["x"], ours["t_x"], ours["T"]).params
    oracle = lifetimes.BetaGeoFitter().fit(reference["frequency_cal"], reference["recency_cal"], reference["T_cal"])
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fitted, name) == pytest.approx(oracle.params_[name], rel=5e-4), name  # 4 significant digits


def test_weekly_cumulative_repeat_transactions_hand_checked():
    # A: first order day 0, repeats on days 3 and 10; B: first on day 5, a repeat on day 20 (and two orders on day 20 count once)
    base = day_number(dt.date(2026, 1, 1))
    days = pd.DataFrame({"customer_id": ["A", "A", "A", "B", "B", "B"], "order_day": [base + d for d in (0, 3, 10, 5, 20, 20)]})
    calibration_end, holdout_end = dt.date(2026, 1, 13), dt.date(2026, 1, 26)  # days 12 and 25
    summary = calibration_summary(days, calibration_end, holdout_end)
    assert summary.loc["A", ["x", "t_x", "T", "holdout"]].tolist() == [2.0, 10 / 7, 12 / 7, 0.0]
    assert summary.loc["B", ["x", "t_x", "T", "holdout"]].tolist() == [0.0, 0.0, 7 / 7, 1.0]
    params = BgNbdParams(r=0.5, alpha=2.0, a=0.8, b=2.0)
    points = weekly_cumulative(days, summary, params, calibration_end, holdout_end)
    assert [p["week_ending"] for p in points] == ["2026-01-08", "2026-01-15", "2026-01-22", "2026-01-26"]
    assert [p["actual"] for p in points] == [1, 2, 3, 3] and [p["holdout"] for p in points] == [False, True, True, True]
    assert points[-1]["predicted"] == pytest.approx(
        float(bgnbd.expected_purchases(params, 25 / 7) + bgnbd.expected_purchases(params, 20 / 7)), abs=1e-3
    )


def test_gamma_gamma_over_repeat_transactions_equals_lifetimes():
    """The features' Gamma-Gamma inputs are lifetimes' frequency and monetary_value (mean value of the repeat periods,
    a day's orders summed), and the fit and the conditional expectation agree with its GammaGammaFitter."""
    from crm_scoring.model import gamma_gamma
    from crm_scoring.model.features import Facts, compute_features

    log = _transaction_log(2000, seed=7)
    rng = np.random.default_rng(8)
    log = pd.concat([log, log.sample(400, random_state=1)], ignore_index=True)  # some days with two orders
    log["margin"] = np.round(rng.gamma(4.0, 60.0, len(log)) * (1 + (log["customer_id"].str[1:].astype(int) % 5)), 2)
    as_of = day_number(dt.date(2026, 12, 1))
    orders = log.assign(
        order_id=[f"o{i}" for i in range(len(log))],
        amount=log["margin"] * 5,
        service_type="trunk",
        cancelled=False,
        shipped=False,
        on_time=np.nan,
        damaged=False,
        lost=False,
        loss=0.0,
    )
    features = compute_features(Facts(orders=orders), as_of)
    reference = lifetimes.utils.summary_data_from_transaction_data(
        log.assign(date=pd.to_datetime(log["order_day"], unit="D")),
        "customer_id",
        "date",
        monetary_value_col="margin",
        observation_period_end=pd.Timestamp(dt.date(2026, 12, 1)),
        freq="D",
        freq_multiplier=7,
    ).reindex(features.index)
    assert np.allclose(features["gg_x"], reference["frequency"]) and np.allclose(features["bg_T"], reference["T"])
    repeat = features["gg_x"] > 0
    assert np.allclose(features.loc[repeat, "gg_mean"], reference.loc[repeat, "monetary_value"])
    ours = gamma_gamma.fit(features.loc[repeat, "gg_x"], features.loc[repeat, "gg_mean"]).params
    oracle = lifetimes.GammaGammaFitter().fit(reference.loc[repeat, "frequency"], reference.loc[repeat, "monetary_value"])
    for name, theirs in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert getattr(ours, name) == pytest.approx(oracle.params_[theirs], rel=5e-4), name
    oracle.params_ = pd.Series({"p": ours.p, "q": ours.q, "v": ours.gamma})
    assert gamma_gamma.expected_average_value(ours, reference["frequency"], reference["monetary_value"]) == pytest.approx(
        np.asarray(oracle.conditional_expected_average_profit(reference["frequency"], reference["monetary_value"])), rel=1e-6
    )
