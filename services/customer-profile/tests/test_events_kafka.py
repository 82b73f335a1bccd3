"""Events leave through the outbox to the real broker, also when the broker was away at write time."""

import asyncio

import pytest
from sqlalchemy import func, select

from crm_common.outbox import outbox_table
from crm_devbroker.testing import read_events, wait_until
from profile_support import full_body, outbox_events


async def test_customer_registered_reaches_kafka(live_profile, kafka_settings):
    response = await live_profile.client.post("/customers", json=full_body())
    assert response.status_code == 201, response.text
    created = response.json()
    [event] = await read_events(kafka_settings, "crm.customers", count=1, predicate=lambda e: e.key == created["id"])
    payload = event.parsed()
    assert event.type == "CustomerRegistered" and payload.customer_id == created["id"]
    assert payload.contacts[0].phone == created["contacts"][0]["phone"] and payload.contract_end.isoformat() == created["contract_end"]


async def test_update_merge_and_erase_events_reach_kafka_in_order(live_profile, kafka_settings):
    client = live_profile.client
    survivor = (await client.post("/customers", json=full_body())).json()
    merged = (await client.post("/customers", json=full_body())).json()
    assert (await client.patch(f"/customers/{survivor['id']}", json={"status": "dormant"}, headers={"If-Match": '"1"'})).status_code == 200
    assert (await client.post(f"/customers/{survivor['id']}/merge", json={"merged_id": merged["id"]})).status_code == 200
    assert (await client.post(f"/contacts/{merged['contacts'][0]['id']}/erase")).status_code == 200
    keys = {survivor["id"], merged["id"]}
    events = await read_events(kafka_settings, "crm.customers", count=7, predicate=lambda e: e.key in keys)
    by_key = {k: [e.type for e in events if e.key == k] for k in keys}
    assert by_key[survivor["id"]] == ["CustomerRegistered", "CustomerUpdated", "CustomerUpdated", "CustomerErased", "CustomerUpdated"]
    assert by_key[merged["id"]] == ["CustomerRegistered", "CustomerMerged"]
    merged_event = next(e for e in events if e.type == "CustomerMerged").parsed()
    assert (merged_event.survivor_id, merged_event.merged_id) == (survivor["id"], merged["id"])


async def test_create_succeeds_while_the_broker_is_paused(live_profile, kafka_settings, local_broker):
    if local_broker is None:
        pytest.skip("needs the broker this session started")
    local_broker.pause()
    try:
        response = await live_profile.client.post("/customers", json=full_body())
        assert response.status_code == 201, response.text
        created = response.json()
        assert len(await outbox_events(live_profile.db, key=created["id"])) == 1
        await asyncio.sleep(1.0)  # the relay is trying meanwhile
        assert await _pending(live_profile.db, created["id"]) == 1, "published to a paused broker?"
    finally:
        local_broker.resume()
    events = await read_events(kafka_settings, "crm.customers", count=1, timeout_s=40, predicate=lambda e: e.key == created["id"])
    assert [e.type for e in events] == ["CustomerRegistered"]
    await wait_until(lambda: _none_pending(live_profile.db, created["id"]), timeout_s=20)


async def _pending(db, key: str) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).where(outbox_table.c.key == key, outbox_table.c.published_at.is_(None)))


async def _none_pending(db, key: str) -> bool:
    return await _pending(db, key) == 0
