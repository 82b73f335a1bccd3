"""Duplicate detection on create (409 with the existing id) and the explicit merge."""

from sqlalchemy import func, select

from crm_profile.customers.models import Address, Contact, Interaction
from profile_support import full_body, outbox_events, slice_body, token, unique_phone


async def _create(profile, body) -> dict:
    response = await profile.client.post("/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_duplicate_tax_id_phone_or_email_is_409_with_the_existing_id(profile):
    existing = await _create(profile, full_body())
    contact = existing["contacts"][0]
    national = contact["phone"][3:]
    attempts = {
        "tax_id": full_body(tax_id=existing["tax_id"].lower()),
        "phone": slice_body(contact={"name": "other", "phone": f"+86 {national[:3]}-{national[3:7]}-{national[7:]}"}),
        "email": full_body(contacts=[{"name": "x"}, {"name": "other", "email": contact["email"].upper()}]),
    }
    for field, body in attempts.items():
        response = await profile.client.post("/customers", json=body)
        assert response.status_code == 409, (field, response.text)
        problem = response.json()
        assert problem["existing_customer_id"] == existing["id"] and problem["matched_on"] == field
        assert response.headers["content-type"].startswith("application/problem+json")
    names = [b["name"] for b in attempts.values()]
    async with profile.db.sessions() as session:  # nothing of the refused creates was written
        from crm_profile.customers.models import Customer

        assert await session.scalar(select(func.count()).where(Customer.name.in_(names))) == 0


async def test_merge_moves_contacts_addresses_and_interactions_to_the_survivor(profile):
    t = token()
    survivor = await _create(
        profile, full_body(tags=["key-account"], service_types=["warehousing"], industry=None, first_order_date="2025-06-01")
    )
    merged_body = full_body(tags=["cold", f"m-{t}"], service_types=["cold_chain"], industry="food", first_order_date="2024-02-01")
    merged_body["contacts"].append({"name": f"Second {t}", "phone": unique_phone()})
    merged = await _create(profile, merged_body)
    interaction = await profile.client.post(
        f"/customers/{merged['id']}/interactions",
        json={"kind": "visit", "channel": "in_person", "author": "am-wu", "summary": "site visit"},
    )
    assert interaction.status_code == 201

    response = await profile.client.post(
        f"/customers/{survivor['id']}/merge", json={"merged_id": merged["id"]}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["moved_contacts"], result["moved_addresses"], result["moved_interactions"]) == (2, 1, 1)
    after = (await profile.client.get(f"/customers/{survivor['id']}")).json()
    assert {c["id"] for c in after["contacts"]} == {c["id"] for c in survivor["contacts"] + merged["contacts"]}
    assert len(after["addresses"]) == 2 and after["industry"] == "food" and after["first_order_date"] == "2024-02-01"
    assert set(after["tags"]) == {"key-account", "cold", f"m-{t}"}
    assert after["service_types"] == ["warehousing", "cold_chain"]
    assert after["version"] == 2 and result["survivor"]["version"] == 2
    log = (await profile.client.get(f"/customers/{survivor['id']}/interactions")).json()["items"]
    assert [i["id"] for i in log] == [interaction.json()["id"]]

    gone = (await profile.client.get(f"/customers/{merged['id']}")).json()
    assert gone["status"] == "merged" and gone["merged_into"] == survivor["id"] and gone["contacts"] == [] and gone["addresses"] == []
    async with profile.db.sessions() as session:
        for model in (Contact, Address, Interaction):
            assert await session.scalar(select(func.count()).where(model.customer_id == merged["id"])) == 0
    listed = (await profile.client.get("/customers", params={"tag": f"m-{t}"})).json()["items"]
    assert [c["id"] for c in listed] == [survivor["id"]]  # merged records leave lists and searches
    merged_list = (await profile.client.get("/customers", params={"status": "merged", "industry": "food"})).json()["items"]
    assert merged["id"] in [c["id"] for c in merged_list]
    phone = merged["contacts"][1]["phone"]
    assert [c["id"] for c in (await profile.client.get("/customers/search", params={"phone": phone})).json()["items"]] == [survivor["id"]]

    [merged_event] = await outbox_events(profile.db, key=merged["id"], type_="CustomerMerged")
    payload = merged_event.parsed()
    assert (payload.survivor_id, payload.merged_id) == (survivor["id"], merged["id"])
    [update] = await outbox_events(profile.db, key=survivor["id"], type_="CustomerUpdated")
    assert len(update.parsed().contacts) == 3 and "contacts" in update.parsed().changed_fields


async def test_survivor_takes_the_tax_id_and_a_new_duplicate_points_at_it(profile):
    survivor = await _create(profile, full_body(tax_id=None))
    merged = await _create(profile, full_body())
    response = await profile.client.post(f"/customers/{survivor['id']}/merge", json={"merged_id": merged["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["survivor"]["tax_id"] == merged["tax_id"]
    again = await profile.client.post("/customers", json=full_body(tax_id=merged["tax_id"]))
    assert again.status_code == 409 and again.json()["existing_customer_id"] == survivor["id"]


async def test_merge_bad_inputs(profile):
    a = await _create(profile, full_body())
    b = await _create(profile, full_body())
    c = await _create(profile, full_body())
    url = f"/customers/{a['id']}/merge"
    assert (await profile.client.post(url, json={"merged_id": "nope"})).status_code == 404
    assert (await profile.client.post("/customers/nope/merge", json={"merged_id": b["id"]})).status_code == 404
    assert (await profile.client.post(url, json={"merged_id": a["id"]})).status_code == 422
    assert (await profile.client.post(url, json={})).status_code == 422
    assert (await profile.client.post(url, json={"merged_id": b["id"]}, headers={"If-Match": '"5"'})).status_code == 412
    assert (await profile.client.post(url, json={"merged_id": b["id"]})).status_code == 200
    twice = await profile.client.post(f"/customers/{c['id']}/merge", json={"merged_id": b["id"]})
    assert twice.status_code == 409 and twice.json()["merged_into"] == a["id"]
    into_merged = await profile.client.post(f"/customers/{b['id']}/merge", json={"merged_id": c["id"]})
    assert into_merged.status_code == 409
    patch_merged = await profile.client.patch(f"/customers/{b['id']}", json={"status": "active"}, headers={"If-Match": "*"})
    assert patch_merged.status_code == 409 and patch_merged.json()["merged_into"] == a["id"]
    assert (await profile.client.post(f"/customers/{b['id']}/contacts", json={"name": "x"})).status_code == 409
