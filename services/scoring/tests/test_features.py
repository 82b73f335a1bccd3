"""The numpy feature code agrees with a plain pandas reference on a realistic history."""

import numpy as np
import pandas as pd

from crm_scoring.model.features import Facts, compute_features
from crm_scoring.scoring.ingest import day_number
from crm_scoring.scoring.service import load_facts
from features_reference import compute_features as reference_features
from scoring_support import AS_OF, feed, history, processor, scoring_db, settings_for


async def test_numpy_features_match_the_pandas_reference(database_factory):
    db = await scoring_db(database_factory, "sqlite", "features")
    proc, _ = processor(db)
    await feed(proc, history(seed=2, n_customers=16), batch_sizes=(2000,))
    async with db.sessions() as session:
        facts = await load_facts(session, settings_for())
    await db.dispose()
    assert len(facts.orders) > 300 and len(facts.complaints) > 0 and len(facts.invoices) > 0
    for as_of in (day_number(AS_OF), day_number(AS_OF) - 200):
        fast = compute_features(facts, as_of)
        slow = reference_features(facts, as_of)
        assert list(fast.index) == list(slow.index)
        for column in slow.columns:
            a = fast[column].to_numpy(dtype=float)
            b = slow[column].to_numpy(dtype=float)
            assert np.allclose(a, b, equal_nan=True, rtol=1e-9, atol=1e-9), column


def test_empty_facts_give_no_rows():
    assert compute_features(Facts(), 20000).empty
    one = compute_features(Facts(customers=pd.DataFrame({"customer_id": ["x"], "credit_limit": [1.0], "share_of_wallet": [None]})), 20000)
    assert one.loc["x", "orders_total"] == 0 and np.isnan(one.loc["x", "first_order_day"])


def test_customer_codes_index_every_frame_into_the_sorted_customer_index():
    from crm_scoring.model.features import FRAMES, customer_codes, customer_index

    facts = Facts(
        orders=pd.DataFrame({"customer_id": ["b", "a", "b", "c"], "order_day": [1, 2, 3, 4]}),
        complaints=pd.DataFrame({"customer_id": ["z", "a"]}),
        invoices=pd.DataFrame({"customer_id": [7, "7", "b"]}),  # a number and its text are one customer, as in customer_index
        customers=pd.DataFrame({"customer_id": ["c", "c", "y"], "credit_limit": [1.0, 2.0, 3.0], "share_of_wallet": [None, None, 0.5]}),
    )
    ids, codes = customer_codes(facts)
    assert list(ids) == list(customer_index(facts)) == ["7", "a", "b", "c", "y", "z"]
    for name in FRAMES:
        frame = getattr(facts, name)
        expected = ids.get_indexer(frame["customer_id"].astype(str)) if len(frame) else []
        assert list(codes[name]) == list(expected), name
    features = compute_features(facts, 10)
    assert features.loc["c", "credit_limit"] == 1.0 and features.loc["y", "share_of_wallet"] == 0.5  # first row of a customer wins
