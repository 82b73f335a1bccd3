"""The scorer (numpy over all customers) gives exactly the records of the per-customer oracle, explanations included."""

import numpy as np
import orjson
import pandas as pd
import pytest

from crm_scoring.model import engine
from crm_scoring.model.features import Facts, compute_features
from crm_scoring.scoring.ingest import day_number
from crm_scoring.scoring.service import load_facts
from scoring_reference import score_features_one_by_one
from scoring_support import AS_OF, feed, history, processor, scoring_db, settings_for

JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def as_reference_record(batch_record: dict) -> dict:
    """A batch record in the per-customer form: the explanations as a dict instead of the stored JSON text."""
    record = {k: v for k, v in batch_record.items() if k not in ("detail_json", "tier_reason", "signals")}
    record["detail"] = orjson.loads(batch_record["detail_json"])
    return record


def assert_same_records(features: pd.DataFrame, model, settings, as_of: int) -> int:
    expected = score_features_one_by_one(features, model, settings, as_of)
    scored = engine.score_batch(features, model, settings, as_of)
    actual = scored.records()
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert as_reference_record(got) == want, got["customer_id"]
        # the stored text is what orjson made of the per-customer dict: same keys in the same order, same numbers (ints stay ints)
        assert got["detail_json"] == orjson.dumps(want["detail"], option=JSON).decode(), got["customer_id"]
        assert got["tier_reason"] == want["detail"]["tier"]["explanation"]
        assert got["signals"] == want["detail"]["churn_risk"]["inputs"]["signals"]
    # slices render the same records as the whole
    middle = len(actual) // 2
    assert scored.records(0, middle) + scored.records(middle, len(actual) + 10) == actual
    return len(actual)


async def test_batch_scores_equal_the_per_customer_scores_on_an_event_history(database_factory):
    db = await scoring_db(database_factory, "sqlite", "batch")
    proc, _ = processor(db)
    await feed(proc, history(seed=3, n_customers=30), batch_sizes=(2000,))
    settings = settings_for()
    async with db.sessions() as session:
        facts = await load_facts(session, settings)
    await db.dispose()
    for as_of in (day_number(AS_OF), day_number(AS_OF) - 200):
        features = compute_features(facts, as_of, settings.window_days, settings.default_days)
        fitted = engine.fit_population(features, settings, as_of)
        assert fitted.bgnbd is not None
        for model in (None, fitted, engine.fit_population(features, settings, as_of, fit_models=False)):
            assert assert_same_records(features, model, settings, as_of) == len(features)


def random_facts(rng: np.random.Generator, n: int, as_of: int) -> Facts:
    """Facts with every edge the scores branch on: no orders, one order, cancelled or future orders, no promise,
    incidents, open and late complaints, surveys, unpaid and defaulted invoices, zero or missing credit limits."""
    ids = np.array([f"c{i:05d}" for i in range(n)], dtype=object)
    per_customer = rng.choice([0, 1, 2, 3, 5, 20, 80], size=n, p=[0.1, 0.15, 0.1, 0.15, 0.2, 0.2, 0.1])
    customer = np.repeat(np.arange(n), per_customer)
    k = customer.size
    start = rng.integers(as_of - 900, as_of - 5, n)
    day = np.minimum(start[customer] + rng.integers(0, 900, k), as_of + rng.integers(-1, 2, k) * 3)
    amount = np.round(rng.lognormal(6, 1.5, k), 2) * (rng.random(k) > 0.02)
    on_time = rng.choice([1.0, 0.0, np.nan], size=k, p=[0.6, 0.2, 0.2])
    orders = pd.DataFrame(
        {
            "customer_id": ids[customer],
            "order_day": day,
            "amount": amount,
            "margin": np.round(amount * rng.normal(0.15, 0.2, k), 2),
            "service_type": rng.choice(
                np.array(["warehousing", "trunk", "distribution", "express", "cold_chain", None], dtype=object), size=k
            ),
            "cancelled": rng.random(k) < 0.05,
            "shipped": rng.random(k) < 0.9,
            "on_time": on_time,
            "damaged": rng.random(k) < 0.03,
            "lost": rng.random(k) < 0.01,
            "loss": np.where(rng.random(k) < 0.04, 150.0, 0.0),
        }
    )
    c = rng.integers(0, n, n // 2)
    filed = (as_of - rng.integers(0, 400, c.size)).astype(float)
    resolved = np.where(rng.random(c.size) < 0.7, filed + rng.integers(0, 10, c.size), np.nan)
    complaints = pd.DataFrame(
        {
            "customer_id": ids[c],
            "filed_day": filed,
            "resolved_day": resolved,
            "within_sla": np.where(np.isnan(resolved), np.nan, (rng.random(c.size) < 0.7).astype(float)),
            "priority": rng.choice(["P1", "P3"], size=c.size),
            "compensation": np.where(rng.random(c.size) < 0.5, 50.0, 0.0),
            "sla_days": rng.choice([1.0, 3.0], size=c.size),
        }
    )
    s = rng.integers(0, n, n // 3)
    surveys = pd.DataFrame(
        {
            "customer_id": ids[s],
            "score": rng.integers(1, 6, s.size).astype(float),
            "answered_day": (as_of - rng.integers(0, 300, s.size)).astype(float),
        }
    )
    v = rng.integers(0, n, 2 * n) // rng.choice([1, 3], size=2 * n)  # a third of the customers hold most invoices
    due = (as_of - rng.integers(-30, 500, v.size)).astype(float)
    paid = np.where(rng.random(v.size) < 0.8, due + rng.choice([-5, 0, 10, 40, 120], size=v.size, p=[0.45, 0.4, 0.05, 0.05, 0.05]), np.nan)
    invoices = pd.DataFrame(
        {
            "customer_id": ids[v],
            "amount": np.round(rng.lognormal(7, 1, v.size), 2),
            "due_day": due,
            "paid_day": paid,
            "days_overdue": rng.choice([0.0, 30.0, 95.0], size=v.size, p=[0.9, 0.05, 0.05]),
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "credit_limit": rng.choice(np.array([np.nan, 0.0, 5_000.0, 100_000.0]), size=n),
            "share_of_wallet": rng.choice(np.array([np.nan, 0.0, 0.4, 1.0]), size=n),
        }
    )
    m = rng.integers(0, n, n)  # measured months, closed or not, in and out of the window, a third breached
    service_levels = pd.DataFrame(
        {"customer_id": ids[m], "end_day": as_of - rng.integers(-40, 500, m.size), "breached": rng.random(m.size) < 0.3}
    )
    return Facts(
        orders=orders, complaints=complaints, surveys=surveys, invoices=invoices, customers=customers, service_levels=service_levels
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_batch_scores_equal_the_per_customer_scores_on_random_facts(seed):
    rng = np.random.default_rng(seed)
    as_of = 20_500
    facts = random_facts(rng, 1500, as_of)
    variants = [
        settings_for(),
        settings_for(
            abc_basis="margin",
            tenure_full_days=365,
            matrix_threshold=40.0,
            p_alive_high_risk=0.5,
            p_alive_medium_risk=0.8,
            satisfaction_drop_points=5.0,
            loyalty_weights={"repeat_rate": 0.0, "tenure": 0.5, "regularity": 0.2, "share_of_wallet": 0.3, "satisfaction": 0.0},
            satisfaction_weights={
                "on_time": 0.0,
                "damage_loss": 0.0,
                "complaints": 0.4,
                "resolution": 0.4,
                "survey": 0.0,
                "service_levels": 0.2,
            },
            current_value_weights={"revenue": 0.0, "margin": 0.0, "order_size": 0.0, "continuity": 1.0},
            potential_value_weights={"growth": 0.5, "cross_sell": 0.0, "wallet_room": 0.5, "lifetime_value": 0.0},
        ),
    ]
    for settings in variants:
        features = compute_features(facts, as_of, settings.window_days, settings.default_days)
        model = engine.fit_population(features, settings, as_of)
        assert model.bgnbd is not None
        records = assert_same_records(features, model, settings, as_of)
        assert records == 1500
        assert_same_records(features, None, settings, as_of)


def test_vectorised_rounding_is_pythons_round():
    from crm_scoring.model.exact import rounded_array

    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.lognormal(3, 5, 20_000) * rng.choice([-1, 1], 20_000),
            rng.integers(-(10**6), 10**6, 20_000) / 1000,
            rng.integers(-(10**6), 10**6, 20_000) / 200 + 0.005,
            [0.125, 2.675, 1.005, -0.0, 0.0, 1e300, np.nan, np.inf],
        ]
    )
    for digits in (1, 2, 3, 4, 6):
        expected = [round(v, digits) for v in values.tolist()]
        got = rounded_array(values, digits).tolist()
        assert orjson.dumps(got) == orjson.dumps(expected), digits  # NaN as null, -0.0 kept
