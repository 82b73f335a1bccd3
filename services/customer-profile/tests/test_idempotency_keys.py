"""Idempotency-Key on the profile's creating POSTs (customers, contacts, addresses, interactions, merge), both databases:
a retry answers the first result and creates nothing twice; the same key with another body is 422."""

import asyncio
import uuid

from sqlalchemy import func, select

from crm_common.idempotency import idempotency_table
from crm_profile.customers.models import Customer
from profile_support import outbox_events, slice_body, token, unique_phone


def key() -> dict:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def customers_named(profile, name: str) -> int:
    async with profile.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Customer).where(Customer.name == name))


async def test_the_same_key_twice_makes_one_customer(profile):
    """The issue's reproduction: the same POST /customers with the same key made two customers."""
    body = {"name": f"Idempotent Freight {token()}"}
    headers = key()
    first = await profile.client.post("/customers", json=body, headers=headers)
    again = await profile.client.post("/customers", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"] == f"/customers/{first.json()['id']}"
    assert again.headers["etag"] == first.headers["etag"] == '"1"'
    assert again.headers["idempotent-replayed"] == "true"
    assert await customers_named(profile, body["name"]) == 1
    assert len(await outbox_events(profile.db, key=first.json()["id"], type_="CustomerRegistered")) == 1
    assert (await profile.client.post("/customers", json=body)).status_code == 201  # without a key: a second one
    assert await customers_named(profile, body["name"]) == 2


async def test_the_same_key_with_another_body_is_422(profile):
    name = f"Idempotent Freight {token()}"
    headers = key()
    assert (await profile.client.post("/customers", json={"name": name}, headers=headers)).status_code == 201
    other = await profile.client.post("/customers", json={"name": name, "region": "North China"}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"] == "urn:crm:problem:idempotency-key-reused"
    assert "different request body" in other.json()["detail"]
    assert await customers_named(profile, name) == 1


async def test_concurrent_retries_make_one_customer(profile):
    body = {"name": f"Idempotent Freight {token()}"}
    headers = key()
    answers = await asyncio.gather(*[profile.client.post("/customers", json=body, headers=headers) for _ in range(4)])
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert await customers_named(profile, body["name"]) == 1


async def test_sub_resources_are_created_once_per_key(profile):
    customer = (await profile.client.post("/customers", json=slice_body())).json()
    base = f"/customers/{customer['id']}"
    creates = {
        "contacts": ({"name": f"Wang Fang {token()}", "phone": unique_phone()}, {"role": "buyer"}),
        "addresses": ({"kind": "pickup", "line1": "18 Harbour Road", "city": "Ningbo"}, {"label": "east gate"}),
        "interactions": (
            {"kind": "call", "channel": "phone", "author": "am-he", "summary": "asked for a quote"},
            {"summary": "asked twice"},
        ),
    }
    for resource, (body, change) in creates.items():
        headers = key()
        first = await profile.client.post(f"{base}/{resource}", json=body, headers=headers)
        again = await profile.client.post(f"{base}/{resource}", json=body, headers=headers)
        assert first.status_code == again.status_code == 201, (resource, first.text)
        assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
        listed = (await profile.client.get(f"{base}/{resource}")).json()
        items = listed["items"] if isinstance(listed, dict) else listed
        assert [i["id"] for i in items].count(first.json()["id"]) == 1
        assert len(items) == (2 if resource == "contacts" else 1), resource  # the slice body's contact, then this one
        changed = await profile.client.post(f"{base}/{resource}", json=body | change, headers=headers)
        assert changed.status_code == 422 and changed.json()["type"] == "urn:crm:problem:idempotency-key-reused", resource
    contact = (await profile.client.get(f"{base}/contacts")).json()[-1]
    assert (await profile.client.get(f"{base}/contacts/{contact['id']}")).status_code == 200


async def test_a_retried_merge_answers_the_first_merge(profile):
    survivor = (await profile.client.post("/customers", json=slice_body())).json()
    merged = (await profile.client.post("/customers", json=slice_body())).json()
    headers = key()
    first = await profile.client.post(f"/customers/{survivor['id']}/merge", json={"merged_id": merged["id"]}, headers=headers)
    again = await profile.client.post(f"/customers/{survivor['id']}/merge", json={"merged_id": merged["id"]}, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    without_key = await profile.client.post(f"/customers/{survivor['id']}/merge", json={"merged_id": merged["id"]})
    assert without_key.status_code >= 400  # what the retry would have met without the key


async def test_a_refused_request_keeps_no_key_and_can_be_corrected(profile):
    customer = (await profile.client.post("/customers", json=slice_body())).json()
    taken_phone = customer["contacts"][0]["phone"]
    headers = key()
    refused = await profile.client.post(
        f"/customers/{customer['id']}/contacts", json={"name": "Zhao Min", "phone": taken_phone}, headers=headers
    )
    assert refused.status_code == 409
    corrected = await profile.client.post(
        f"/customers/{customer['id']}/contacts", json={"name": "Zhao Min", "phone": unique_phone()}, headers=headers
    )
    assert corrected.status_code == 201
    async with profile.db.sessions() as session:
        stored = (
            await session.execute(
                select(idempotency_table.c.route, idempotency_table.c.subject).where(idempotency_table.c.key == headers["Idempotency-Key"])
            )
        ).all()
    assert [tuple(s) for s in stored] == [(f"POST /customers/{customer['id']}/contacts", customer["id"])]
