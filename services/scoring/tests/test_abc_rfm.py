"""ABC cut-offs, RFM quintiles and the Pareto report on small data sets checked by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_scoring.model import abc, rfm
from scoring_oracle import rfm_quintile_scores


def test_abc_on_one_hundred_customers():
    # customer i (1..100) has revenue i * 10; the best is 1000
    revenue = [i * 10.0 for i in range(1, 101)]
    t = abc.thresholds(revenue)  # A top 1 customer, B next 4, C next 15, D 80
    assert (t.a, t.b, t.c) == (1000.0, 960.0, 810.0)
    classes = abc.classify_many(revenue, t)
    assert list(classes[::-1][:1]) == ["A"]
    assert list(classes[::-1][1:5]) == ["B"] * 4
    assert list(classes[::-1][5:20]) == ["C"] * 15
    assert set(classes[::-1][20:]) == {"D"}
    assert list(abc.classify_many([0.0, np.nan], t)) == ["D", "D"]


def test_abc_custom_cutoffs_and_zero_revenue():
    revenue = [50, 40, 30, 20, 10, 0, 0]  # 5 contributing customers
    t = abc.thresholds(revenue, a=0.2, b=0.2, c=0.2)  # 1 A, 1 B, 1 C, rest D
    assert list(abc.classify_many(revenue, t)) == ["A", "B", "C", "D", "D", "D", "D"]


def test_abc_ties_share_the_better_class():
    t = abc.thresholds([100, 100, 5, 1], a=0.25, b=0.25, c=0.25)
    assert list(abc.classify_many([100, 100, 5, 1], t)) == ["A", "A", "C", "D"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1, max_size=300))
def test_abc_classes_are_monotone_in_revenue(values):
    t = abc.thresholds(values)
    classes = abc.classify_many(values, t)
    rank = {c: i for i, c in enumerate(abc.CLASSES)}
    order = np.argsort(values)
    for lower, higher in zip(order, order[1:]):
        if values[higher] > values[lower]:
            assert rank[classes[higher]] <= rank[classes[lower]]
    # never more A customers than the cut-off allows, unless ties at the threshold
    positive = [v for v in values if v > 0]
    if positive and len(set(positive)) == len(positive):
        assert (classes == "A").sum() == abc.class_counts(len(positive), 0.01, 0.04, 0.15)[0]


def test_pareto_report_shares():
    revenue = [500, 200, 100, 80, 60, 30, 20, 10, 0, 0]
    t = abc.thresholds(revenue, a=0.125, b=0.125, c=0.25)  # 8 contributors: A 1, B 1, C 2, D 4
    classes = abc.classify_many(revenue, t)
    report = abc.pareto_report(revenue, classes, curve_points=10)
    by_class = {row["class"]: row for row in report["classes"]}
    assert report["total_contribution"] == 1000
    assert by_class["A"]["customers"] == 1 and by_class["A"]["contribution_share"] == 0.5
    assert by_class["B"]["contribution_share"] == 0.2
    assert by_class["C"]["customers"] == 2 and by_class["C"]["contribution_share"] == 0.18
    assert by_class["D"]["customers"] == 6 and by_class["D"]["customer_share"] == 0.6 and by_class["D"]["contribution_share"] == 0.12
    assert report["top_20pct_share"] == 0.7  # the best 2 of 10 customers bring 700 of 1000
    assert report["curve"][1] == {"customer_share": 0.1, "contribution_share": 0.5}
    assert report["curve"][-1] == {"customer_share": 1.0, "contribution_share": 1.0}


def test_rfm_quintiles_hand_checked():
    values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert rfm_quintile_scores(values) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    bp = rfm.breakpoints(values)
    assert bp.cuts == (3.0, 5.0, 7.0, 9.0)
    assert list(rfm.score_many(values, bp)) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # recency: fewer days since the last order is better
    recency = [300, 10, 45, 5, 120]
    bp_r = rfm.breakpoints(recency, higher_is_better=False)
    assert list(rfm.score_many(recency, bp_r)) == [1, 4, 3, 5, 2]
    # ties share a score
    tied = [0, 0, 0, 0, 3, 3, 7, 7, 7, 9]
    assert rfm_quintile_scores(tied) == [1, 1, 1, 1, 3, 3, 4, 4, 4, 5]
    assert list(rfm.score_many(tied, rfm.breakpoints(tied))) == [1, 1, 1, 1, 3, 3, 4, 4, 4, 5]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=200), st.booleans())
def test_rfm_breakpoints_reproduce_the_definition(values, higher):
    signed = np.array(values, dtype=float) * (1 if higher else -1)
    expected = rfm_quintile_scores(signed)
    assert list(rfm.score_many(values, rfm.breakpoints(values, higher_is_better=higher))) == list(expected)


@pytest.mark.parametrize(
    "r,f,m,name",
    [
        (4, 5, 5, "champions"),
        (5, 4, 5, "loyal"),
        (4, 3, 2, "potential_loyalist"),
        (5, 1, 1, "new"),
        (4, 1, 2, "promising"),
        (3, 3, 3, "need_attention"),
        (3, 1, 1, "about_to_sleep"),
        (2, 3, 4, "at_risk"),
        (1, 5, 4, "cant_lose"),
        (2, 1, 1, "hibernating"),
        (1, 1, 2, "lost"),
        (4, 0, 0, "hibernating"),
        (1, 0, 0, "lost"),
    ],
)
def test_rfm_segments(r, f, m, name):
    assert rfm.segment(r, f, m) == name


def test_segment_map_covers_every_score_combination_and_the_vector_form_agrees():
    r, f, m = (a.ravel() for a in np.meshgrid(*[np.arange(1, 6)] * 3, indexing="ij"))
    r, f, m = np.concatenate([r, np.arange(1, 6)]), np.concatenate([f, np.zeros(5, int)]), np.concatenate([m, np.zeros(5, int)])
    names = [rfm.segment(int(a), int(b), int(c)) for a, b, c in zip(r, f, m)]
    assert list(rfm.segment_many(r, f, m)) == names
    assert set(names) == set(rfm.SEGMENTS)  # every documented name is reachable, nothing else is produced
    assert [rfm.segment(r_, 0, 0) for r_ in (5, 4, 3, 2, 1)] == ["hibernating"] * 4 + ["lost"]


def _mostly_dormant_base(n: int, dormant_share: float, seed: int):
    """A base like a 3PL's: most shippers have not ordered for over a year, the rest order at skewed rates."""
    rng = np.random.default_rng(seed)
    dormant = rng.random(n) < dormant_share
    recency = np.where(dormant, rng.integers(366, 1500, n), rng.integers(0, 365, n)).astype(float)
    rate = rng.gamma(0.8, 6.0, n)  # orders per year of the active ones
    orders = np.where(dormant, 0, 1 + rng.poisson(rate)).astype(float)
    revenue = np.where(dormant, 0.0, orders * rng.lognormal(7, 1, n))
    return recency, orders, revenue, ~dormant


def test_active_customers_spread_over_f_and_m_when_most_of_the_base_is_dormant():
    recency, orders, revenue, active = _mostly_dormant_base(20_000, 0.65, seed=25)
    r = rfm.score_many(recency, rfm.breakpoints(recency, higher_is_better=False))
    key = rfm.frequency_key(orders, revenue)
    f = rfm.active_scores(key, active, rfm.breakpoints(key[active]))
    m = rfm.active_scores(revenue, active, rfm.breakpoints(revenue[active]))
    assert (f[~active] == 0).all() and (m[~active] == 0).all()
    for scores in (f[active], m[active]):
        shares = np.bincount(scores, minlength=6)[1:] / active.sum()
        assert ((shares >= 0.15) & (shares <= 0.25)).all(), shares
    segments = rfm.segment_many(r, f, m)
    assert (segments[active] == "champions").mean() <= 0.25
    assert set(segments[~active]) <= {"hibernating", "lost"}
    # with 65% dormant the active customers all have R 4 or 5; they spread over every segment of those two rows
    assert set(segments[active]) == {"champions", "loyal", "potential_loyalist", "new", "promising"}


def test_all_active_base_keeps_plain_quintiles():
    recency, orders, revenue, active = _mostly_dormant_base(5_000, 0.0, seed=3)
    assert active.all()
    key = rfm.frequency_key(orders, revenue)
    f = rfm.active_scores(key, active, rfm.breakpoints(key))
    assert list(f) == rfm_quintile_scores(key)
    # the tie-break only orders customers with the same number of orders
    assert (np.diff(f[np.lexsort((revenue, orders))]) >= 0).all()
