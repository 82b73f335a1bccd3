"""Each formula of crm_scoring.model.scores (numpy, many customers at once) against the per-customer oracle
(scoring_oracle.py) on generated inputs: the same values, and the same explanation JSON byte for byte.

The oracle gets each customer's inputs as the Python values of the arrays (NaN -> None), so ints stay ints and
floats floats on both sides, as in the service."""

import math

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scoring_oracle as oracle
from crm_scoring.model import abc, rfm, scores
from crm_scoring.settings import ScoringSettings

DEFAULTS = ScoringSettings()
FORMULA_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def money(low: float = -1e5, high: float = 1e8):
    return st.floats(low, high, allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, 1.0, 0.5, 2.5, 1e6])


def maybe(strategy):
    """A value or NaN (unknown)."""
    return st.one_of(st.just(math.nan), strategy)


def weights_for(names: tuple[str, ...]):
    """The defaults, or generated weights (some zero, possibly all) that the formula must take as they are."""
    share = st.sampled_from([0.0, 0.1, 0.15, 0.2, 0.25, 1 / 3, 0.5, 1.0]) | st.floats(0, 1)
    return st.one_of(st.none(), st.fixed_dictionaries({k: share for k in names}))


def columns(rows: list[tuple], dtypes: tuple) -> list[np.ndarray]:
    return [np.array([row[i] for row in rows], dtype=dtype) for i, dtype in enumerate(dtypes)]


def python(values: np.ndarray) -> list:
    """What the oracle gets: the array's Python values, None for NaN."""
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values.tolist()]


def assert_explained(texts: list[str], expected: list[oracle.Explained]) -> None:
    assert len(texts) == len(expected)
    for text, want in zip(texts, expected):
        assert text == orjson.dumps(want.as_dict()).decode()


def assert_values(values: np.ndarray, expected: list[oracle.Explained]) -> None:
    assert python(values) == [e.value for e in expected]


NORMS = st.fixed_dictionaries(
    {
        k: st.sampled_from([0.0, 1.0, 5_000.0, 150_000.0, 1_000_000.0]) | st.floats(0.5, 1e7)
        for k in ("revenue", "margin", "order_size", "clv")
    }
)


@FORMULA_SETTINGS
@given(
    st.lists(st.tuples(money(), money(), money(0, 1e6), st.integers(0, 12)), min_size=1, max_size=25),
    NORMS,
    weights_for(("revenue", "margin", "order_size", "continuity")),
)
def test_current_value(rows, norms, weights):
    weights = weights or DEFAULTS.current_value_weights
    revenue, margin, avg, months = columns(rows, (float, float, float, np.int64))
    got = scores.current_value(revenue, margin, avg, months, norms, weights)
    want = [oracle.current_value(*args, norms, weights) for args in zip(*map(python, (revenue, margin, avg, months)))]
    assert_values(got.value, want)
    assert_explained(got.explain(slice(0, len(rows))), want)


@FORMULA_SETTINGS
@given(
    st.lists(st.tuples(maybe(st.floats(-3, 3)), st.integers(0, 6), maybe(st.floats(0, 1)), money()), min_size=1, max_size=25),
    NORMS,
    weights_for(("growth", "cross_sell", "wallet_room", "lifetime_value")),
)
def test_potential_value(rows, norms, weights):
    weights = weights or DEFAULTS.potential_value_weights
    growth, services, wallet, clv = columns(rows, (float, np.int64, float, float))
    got = scores.potential_value(growth, services, wallet, clv, norms, weights)
    want = [oracle.potential_value(*args, norms, weights) for args in zip(*map(python, (growth, services, wallet, clv)))]
    assert_values(got.value, want)
    assert_explained(got.explain(slice(0, len(rows))), want)


@st.composite
def deliveries(draw):
    shipments = draw(st.integers(0, 500) | st.sampled_from([0, 1, 3]))
    on_time_known = draw(st.integers(0, shipments))
    on_time = float(draw(st.integers(0, on_time_known)))
    incidents = draw(st.integers(0, 30))
    complaints = draw(st.integers(0, 40))
    within_sla = float(draw(st.integers(0, complaints)))
    survey = draw(maybe(st.floats(1, 5) | st.sampled_from([1.0, 3.0, 4.25, 5.0])))
    months = draw(st.integers(0, 12))
    breaches = draw(st.integers(0, months))
    return shipments, on_time_known, on_time, incidents, complaints, within_sla, survey, months, breaches


SATISFACTION_TYPES = (np.int64, np.int64, float, np.int64, np.int64, float, float, np.int64, np.int64)


@FORMULA_SETTINGS
@given(
    st.lists(deliveries(), min_size=1, max_size=25),
    weights_for(("on_time", "damage_loss", "complaints", "resolution", "survey", "service_levels")),
)
def test_satisfaction(rows, weights):
    weights = weights or DEFAULTS.satisfaction_weights
    cols = columns(rows, SATISFACTION_TYPES)
    got = scores.satisfaction(*cols, weights)
    want = [oracle.satisfaction(*args, weights) for args in zip(*map(python, cols))]
    assert_values(got.value, want)
    assert_explained(got.explain(slice(0, len(rows))), want)


@FORMULA_SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(0, 300) | st.just(0), st.floats(0, 2000), maybe(st.floats(0, 3)), maybe(st.floats(0, 1)), maybe(st.floats(0, 100))
        ),
        min_size=1,
        max_size=25,
    ),
    weights_for(("repeat_rate", "tenure", "regularity", "share_of_wallet", "satisfaction")),
    st.sampled_from([365, 730]),
)
def test_loyalty(rows, weights, tenure_full_days):
    weights = weights or DEFAULTS.loyalty_weights
    cols = columns(rows, (np.int64, float, float, float, float))
    got = scores.loyalty(*cols, weights, tenure_full_days)
    want = [oracle.loyalty(*args, weights, tenure_full_days) for args in zip(*map(python, cols))]
    assert_values(got.value, want)
    assert_explained(got.explain(slice(0, len(rows))), want)


@st.composite
def invoices(draw):
    boundary = draw(
        st.sampled_from([None, (10, 10, 7), (20, 20, 19), (3, 3, 3), (40, 40, 38), (10, 10, 6)])
    )  # on-time rates 0.7 and 0.95, 3 paid
    count = boundary[0] if boundary else draw(st.integers(0, 40))
    paid = boundary[1] if boundary else draw(st.integers(0, count))
    on_time = boundary[2] if boundary else draw(st.integers(0, paid))
    overdue = float(draw(st.sampled_from([0, 1, 30, 31, 89, 90, 200]) | st.integers(0, 400)))
    defaults = draw(st.integers(0, 3))
    outstanding = draw(money(0, 1e6))
    limit = draw(maybe(st.sampled_from([0.0, 1_000.0, 100_000.0]) | st.floats(1, 1e6)))
    return count, paid, on_time, overdue, defaults, outstanding, limit


@FORMULA_SETTINGS
@given(st.lists(invoices(), min_size=1, max_size=25), st.sampled_from([60, 90]))
def test_credit_grade(rows, default_days):
    cols = columns(rows, (np.int64, np.int64, np.int64, float, np.int64, float, float))
    got = scores.credit_grade(*cols, default_days)
    want = [oracle.credit_grade(*args, default_days) for args in zip(*map(python, cols))]
    assert got.grade.tolist() == [e.value for e in want]
    assert_explained(got.explain(slice(0, len(rows))), want)


@st.composite
def churn_inputs(draw):
    recent, before = draw(st.integers(0, 30)), draw(st.integers(0, 200))
    history = float(draw(st.sampled_from([0, 1, 90, 400]) | st.integers(0, 1500)))
    past_sla = draw(st.integers(0, 2))
    satisfaction_all, satisfaction_recent = draw(maybe(st.floats(0, 100))), draw(maybe(st.floats(0, 100)))
    breaches = draw(st.integers(0, 3))
    p_alive = draw(maybe(st.floats(0, 1) | st.sampled_from([0.3, 0.6])))
    expected = draw(maybe(st.floats(0, 50)))
    return recent, before, history, past_sla, satisfaction_all, satisfaction_recent, breaches, p_alive, expected


@FORMULA_SETTINGS
@given(
    st.lists(churn_inputs(), min_size=1, max_size=25),
    st.sampled_from([(0.3, 0.6), (0.5, 0.8)]),
    st.sampled_from([0.5, 0.3]),
    st.sampled_from([15.0, 5.0]),
)
def test_churn_signals_and_risk(rows, thresholds, drop_ratio, satisfaction_drop):
    high, medium = thresholds
    cols = columns(rows, (np.int64, np.int64, float, np.int64, float, float, np.int64, float, float))
    signals = scores.churn_signals(*cols[:7], drop_ratio=drop_ratio, satisfaction_drop=satisfaction_drop)
    count = sum(s.astype(int) for s in signals.values())
    levels = scores.risk_level(cols[7], count, high=high, medium=medium)
    n = len(rows)
    texts = scores.churn_risk_explanations(
        levels, cols[7], cols[8], scores.signal_codes(signals, slice(0, n)), np.ones(n, dtype=bool), slice(0, n)
    )
    want = []
    for *signal_args, p_alive, expected in zip(*map(python, cols)):
        found = oracle.churn_signals(*signal_args, drop_ratio=drop_ratio, satisfaction_drop=satisfaction_drop)
        want.append(oracle.churn_risk(p_alive, expected, found, high=high, medium=medium))
    assert levels.tolist() == [e.value for e in want]
    assert_explained(texts, want)


CLASSES = st.sampled_from(["A", "B", "C", "D", None])
GRADES = st.sampled_from(["A", "B", "C", "D"])
SCORE = st.floats(0, 100) | st.sampled_from([0.0, 49.99, 50.0, 100.0])


@FORMULA_SETTINGS
@given(st.lists(st.tuples(CLASSES, st.sampled_from(["low", "medium", "high"]), st.integers(0, 5), st.booleans()), min_size=1, max_size=25))
def test_tier(rows):
    abc_class = np.array([r[0] for r in rows], dtype=object)
    risk = np.array([r[1] for r in rows], dtype=object)
    orders, flagged = np.array([r[2] for r in rows], dtype=np.int64), np.array([r[3] for r in rows], dtype=bool)
    tiers = scores.tiers(abc_class, risk, orders, flagged)
    texts, reasons = scores.tier_explanations(tiers.tolist(), abc_class.tolist(), flagged.tolist(), risk.tolist(), orders.tolist())
    want = [oracle.tier(c, r, o, f) for c, r, o, f in rows]
    assert tiers.tolist() == [e.value for e in want]
    assert reasons == [e.explanation for e in want]
    assert_explained(texts, want)


@FORMULA_SETTINGS
@given(st.lists(st.tuples(SCORE, SCORE, SCORE, GRADES), min_size=1, max_size=25), st.sampled_from([50.0, 40.0]))
def test_matrices(rows, threshold):
    current, potential, loyalty = (np.array([r[i] for r in rows]) for i in range(3))
    grades = np.array([r[3] for r in rows], dtype=object)
    assert scores.value_loyalty_cells(current, loyalty, threshold).tolist() == [
        oracle.value_loyalty_cell(c, lo, threshold) for c, _, lo, _ in rows
    ]
    assert scores.credit_loyalty_cells(grades, loyalty, threshold).tolist() == [
        oracle.credit_loyalty_cell(g, lo, threshold) for _, _, lo, g in rows
    ]
    assert scores.value_matrix_cells(current, potential, threshold).tolist() == [
        oracle.value_matrix_cell(c, p, threshold) for c, p, _, _ in rows
    ]


def test_a_slice_explains_its_own_customers():
    """explain(sl) of a slice is that part of the whole (the weights texts are looked up per pattern within the slice)."""
    rng = np.random.default_rng(5)
    n = 40
    cols = [
        rng.integers(0, 50, n),
        rng.integers(0, 20, n),
        rng.integers(0, 20, n).astype(float),
        rng.integers(0, 3, n),
        rng.integers(0, 4, n),
        rng.integers(0, 2, n).astype(float),
        np.where(rng.random(n) < 0.5, np.nan, 4.0),
        rng.integers(0, 4, n),
        rng.integers(0, 2, n),
    ]
    cols[1] = np.minimum(cols[1], cols[0])
    cols[8] = np.minimum(cols[8], cols[7])
    got = scores.satisfaction(*cols, DEFAULTS.satisfaction_weights)
    whole = got.explain(slice(0, n))
    assert got.explain(slice(0, 17)) + got.explain(slice(17, n)) == whole
    assert len(set(whole)) > 10


@pytest.mark.parametrize("reference", [0.0, -1.0])
def test_log_scaled_without_a_reference_is_zero(reference):
    assert scores.log_scaled(np.array([0.0, 10.0, 1e9]), reference).tolist() == [0.0, 0.0, 0.0]


POPULATION = st.lists(st.floats(-100, 1e6, allow_nan=False) | st.sampled_from([0.0, 5.0, 5.0, 100.0]), min_size=1, max_size=60)


@FORMULA_SETTINGS
@given(POPULATION, st.lists(maybe(st.floats(-100, 1e6)) | st.sampled_from([0.0, 5.0, 100.0]), min_size=1, max_size=30))
def test_abc_classes(population, contributions):
    thresholds = abc.thresholds(population)
    values = np.array(contributions, dtype=float)
    assert abc.classify_many(values, thresholds).tolist() == [oracle.abc_class(v, thresholds) for v in python(values)]


@FORMULA_SETTINGS
@given(
    POPULATION, st.lists(st.floats(-100, 1e6, allow_nan=False) | st.sampled_from([0.0, 5.0, 100.0]), min_size=1, max_size=30), st.booleans()
)
def test_rfm_scores(population, values, higher_is_better):
    bp = rfm.breakpoints(population, higher_is_better=higher_is_better)
    assert rfm.score_many(values, bp).tolist() == [oracle.rfm_score(v, bp) for v in values]
