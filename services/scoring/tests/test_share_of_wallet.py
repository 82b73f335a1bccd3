"""What the profile declares reaches the scores: share of wallet (declared, or estimated from the declared potential
volume) and the manual key-account flag (size band key_account), honoured beside class A with the reason shown."""

import numpy as np
import pandas as pd
from sqlalchemy import select

from crm_common.events import decode_envelope
from crm_common.events.customers import CustomerRegistered, CustomerRegisteredV2, CustomerUpdatedV2
from crm_common.events.logistics import OrderCreated
from crm_common.outbox import outbox_table
from crm_scoring.model.features import Facts, compute_features
from crm_scoring.scoring.ingest import day_number
from crm_scoring.scoring.models import customer_scores, customers
from crm_scoring.scoring.service import load_facts
from scoring_support import AS_OF, event, feed, processor, scoring_db, settings_for


def test_declared_share_wins_else_revenue_over_potential_volume_capped_at_one():
    facts = Facts(
        orders=pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "order_day": [100] * 4, "amount": [300.0, 300.0, 5000.0, 300.0]}),
        customers=pd.DataFrame(
            {
                "customer_id": ["a", "b", "c", "d"],
                "credit_limit": [None] * 4,
                "share_of_wallet": [0.2, None, None, None],
                "potential_volume": [1000.0, 1000.0, 1000.0, 0.0],
            }
        ),
    )
    share = compute_features(facts, 120)["share_of_wallet"]
    assert share["a"] == 0.2  # declared
    assert share["b"] == 0.3  # 300 of a 1000 yearly spend
    assert share["c"] == 1.0  # more than the declared spend: all of it
    assert np.isnan(share["d"])  # a zero potential volume says nothing


async def test_profile_versions_1_and_2_fill_the_loyalty_and_potential_inputs(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "wallet")
    try:
        proc, dead = processor(db)
        history = [
            event(CustomerRegisteredV2(customer_id="v2", name="Two", potential_volume="10000", size_band="key_account"), "v2", AS_OF),
            event(CustomerRegistered(customer_id="v1", name="One"), "v1", AS_OF),
            event(
                CustomerUpdatedV2(customer_id="sow", name="Declared", share_of_wallet=0.6, changed_fields=["share_of_wallet"]), "sow", AS_OF
            ),
        ] + [
            event(OrderCreated(order_id=f"{cid}-o", customer_id=cid, order_date=AS_OF, amount=2500), cid, AS_OF)
            for cid in ("v2", "v1", "sow")
        ]
        await feed(proc, history)
        assert dead.sent == []
        async with db.sessions() as session:
            row = (await session.execute(select(customers).where(customers.c.customer_id == "v2"))).one()
            assert (row.potential_volume, row.size_band) == (10000.0, "key_account")
            facts = await load_facts(session, settings_for(db.url))
            scores = {r.customer_id: r for r in (await session.execute(select(customer_scores))).all()}
        share = compute_features(facts, day_number(AS_OF))["share_of_wallet"]
        assert share["v2"] == 0.25 and share["sow"] == 0.6 and np.isnan(share["v1"])
        assert scores["v2"].loyalty != scores["v1"].loyalty  # the known share is weighed in, the unknown one is left out
        assert scores["v2"].tier == "key_account" and scores["v1"].tier != "key_account"
        tier = scores["v2"].detail["tier"]
        assert tier["explanation"] == "Key account: flagged by hand on the profile." and tier["inputs"]["key_account_flag"] is True
        async with db.sessions() as session:
            [changed] = [e for e in await outbox_events(session) if e.type == "CustomerTierChanged"]
        assert (changed.key, changed.parsed().new_tier, changed.parsed().reason) == ("v2", "key_account", tier["explanation"])
    finally:
        await db.dispose()


async def outbox_events(session) -> list:
    return [decode_envelope(body) for body in (await session.scalars(select(outbox_table.c.body).order_by(outbox_table.c.id))).all()]
