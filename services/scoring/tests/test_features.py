"""The numpy feature code agrees with a plain pandas reference on a realistic history."""

import numpy as np
import pandas as pd
from features_reference import compute_features as reference_features
from scoring_support import AS_OF, feed, history, processor, scoring_db, settings_for

from crm_scoring.model.features import Facts, compute_features
from crm_scoring.scoring.ingest import day_number
from crm_scoring.scoring.service import load_facts


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
