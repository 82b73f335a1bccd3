"""Contacts, addresses and interactions of a customer: happy paths and 404 / 409 / 412 / 422 / 428."""

import datetime as dt

from profile_support import error_locs, full_body, outbox_events, slice_body, token, unique_phone


async def _customer(profile, **overrides) -> dict:
    response = await profile.client.post("/customers", json=full_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def test_contact_lifecycle_bumps_the_customer_and_emits_updates(profile):
    customer = await _customer(profile)
    base = f"/customers/{customer['id']}/contacts"
    t = token()
    added = await profile.client.post(
        base,
        json={
            "name": f"Chen Jie {t}",
            "phone": unique_phone(),
            "email": f"CHEN.{t}@example.com",
            "language": "en",
            "timezone": "Europe/London",
        },
    )
    assert added.status_code == 201, added.text
    contact = added.json()
    assert contact["email"] == f"chen.{t}@example.com" and contact["marketing_consent"] is False
    assert (await profile.client.get(f"/customers/{customer['id']}")).headers["ETag"] == '"2"'
    assert [c["id"] for c in (await profile.client.get(base)).json()][-1] == contact["id"]

    got = await profile.client.get(f"{base}/{contact['id']}")
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    patched = await profile.client.patch(
        f"{base}/{contact['id']}",
        json={"marketing_consent": True, "marketing_consent_source": "web form", "role": "CFO"},
        headers={"If-Match": '"1"'},
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] == '"2"'
    assert patched.json()["marketing_consent"] is True and patched.json()["marketing_consent_source"] == "web form"
    assert patched.json()["marketing_consent_at"] is not None
    withdrawn = await profile.client.patch(f"{base}/{contact['id']}", json={"marketing_consent": False}, headers={"If-Match": '"2"'})
    assert withdrawn.json()["marketing_consent"] is False and withdrawn.json()["marketing_consent_at"] is not None

    deleted = await profile.client.delete(f"{base}/{contact['id']}", headers={"If-Match": '"3"'})
    assert deleted.status_code == 204
    assert (await profile.client.get(f"{base}/{contact['id']}")).status_code == 404
    updates = await outbox_events(profile.db, key=customer["id"], type_="CustomerUpdated")
    assert len(updates) == 4
    assert contact["id"] in [c.contact_id for c in updates[0].parsed().contacts]
    assert updates[1].parsed().contacts[-1].role == "CFO" and updates[1].parsed().contacts[-1].marketing_consent
    assert contact["id"] not in [c.contact_id for c in updates[-1].parsed().contacts]


async def test_contact_bad_inputs(profile):
    customer = await _customer(profile)
    other = await _customer(profile)
    base = f"/customers/{customer['id']}/contacts"
    existing = customer["contacts"][0]
    assert (await profile.client.post("/customers/nope/contacts", json={"name": "x"})).status_code == 404
    assert (await profile.client.get(f"{base}/nope")).status_code == 404
    assert (await profile.client.get(f"/customers/{other['id']}/contacts/{existing['id']}")).status_code == 404
    empty = await profile.client.post(base, json={"role": "driver"})
    assert empty.status_code == 422
    half_quiet = await profile.client.post(base, json={"name": "x", "quiet_hours_start": "22:00"})
    assert half_quiet.status_code == 422
    bad_phone = await profile.client.post(base, json={"name": "x", "phone": "call me"})
    assert ["body", "phone"] in error_locs(bad_phone.json())
    same_customer = await profile.client.post(base, json={"name": "x", "phone": existing["phone"]})
    assert same_customer.status_code == 409 and same_customer.json()["existing_contact_id"] == existing["id"]
    elsewhere = await profile.client.post(base, json={"name": "x", "email": other["contacts"][0]["email"].upper()})
    assert elsewhere.status_code == 409 and elsewhere.json()["existing_customer_id"] == other["id"]
    url = f"{base}/{existing['id']}"
    assert (await profile.client.patch(url, json={"role": "boss"})).status_code == 428
    assert (await profile.client.patch(url, json={"role": "boss"}, headers={"If-Match": '"7"'})).status_code == 412
    assert (await profile.client.patch(url, json={"language": None}, headers={"If-Match": '"1"'})).status_code == 422
    assert (await profile.client.patch(url, json={"quiet_hours_end": None}, headers={"If-Match": '"1"'})).status_code == 422
    assert (await profile.client.delete(url)).status_code == 428
    assert (await profile.client.delete(url, headers={"If-Match": '"9"'})).status_code == 412
    assert (await profile.client.patch(f"{base}/nope", json={"role": "x"}, headers={"If-Match": '"1"'})).status_code == 404


async def test_address_lifecycle_and_bad_inputs(profile):
    customer = await _customer(profile, addresses=[])
    base = f"/customers/{customer['id']}/addresses"
    added = await profile.client.post(
        base,
        json={
            "kind": "delivery",
            "label": "DC Wuxi",
            "line1": "5 Xinhua Road",
            "city": "Wuxi",
            "province": "Jiangsu",
            "postal_code": "214000",
            "latitude": 31.49,
            "longitude": 120.31,
        },
    )
    assert added.status_code == 201, added.text
    address = added.json()
    assert address["country"] == "CN" and added.headers["ETag"] == '"1"'
    assert [a["id"] for a in (await profile.client.get(base)).json()] == [address["id"]]
    assert (await profile.client.get(f"{base}/{address['id']}")).json()["label"] == "DC Wuxi"
    patched = await profile.client.patch(f"{base}/{address['id']}", json={"kind": "billing", "latitude": 31.5}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200 and patched.json()["kind"] == "billing" and patched.headers["ETag"] == '"2"'
    for body, loc in [
        ({"kind": "pickup"}, ["body", "line1"]),
        ({"kind": "pickup", "line1": "x", "latitude": 95, "longitude": 1}, ["body", "latitude"]),
        ({"kind": "pickup", "line1": "x", "country": "china"}, ["body", "country"]),
    ]:
        bad = await profile.client.post(base, json=body)
        assert bad.status_code == 422 and loc in error_locs(bad.json()), bad.text
    assert (await profile.client.post(base, json={"kind": "pickup", "line1": "x", "latitude": 30})).status_code == 422
    assert (await profile.client.patch(f"{base}/{address['id']}", json={"longitude": None}, headers={"If-Match": '"2"'})).status_code == 422
    assert (await profile.client.patch(f"{base}/{address['id']}", json={"city": "Suzhou"})).status_code == 428
    assert (await profile.client.patch(f"{base}/{address['id']}", json={"city": "Suzhou"}, headers={"If-Match": '"1"'})).status_code == 412
    assert (await profile.client.post("/customers/nope/addresses", json={"kind": "pickup", "line1": "x"})).status_code == 404
    assert (await profile.client.get(f"{base}/nope")).status_code == 404
    assert (await profile.client.delete(f"{base}/{address['id']}", headers={"If-Match": '"1"'})).status_code == 412
    assert (await profile.client.delete(f"{base}/{address['id']}", headers={"If-Match": '"2"'})).status_code == 204
    assert (await profile.client.get(base)).json() == []


async def test_interaction_log_newest_first_with_cursor(profile):
    customer = await _customer(profile)
    base = f"/customers/{customer['id']}/interactions"
    start = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)
    contact_id = customer["contacts"][0]["id"]
    made = []
    for i, kind in enumerate(["visit", "call", "survey", "care", "call"]):
        body = {
            "kind": kind,
            "channel": "phone" if kind == "call" else "in_person",
            "author": "am-zhang",
            "occurred_at": (start + dt.timedelta(days=i)).isoformat(),
            "summary": f"{kind} #{i}",
            "next_follow_up": "2026-06-01",
            "contact_id": contact_id if i % 2 else None,
        }
        response = await profile.client.post(base, json=body)
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
    seen, cursor = [], None
    while True:
        page = (await profile.client.get(base, params={"limit": 2} | ({"cursor": cursor} if cursor else {}))).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))
    now = await profile.client.post(base, json={"kind": "call", "channel": "wechat", "author": "am-li", "summary": "no time given"})
    assert now.status_code == 201 and now.json()["occurred_at"] is not None


async def test_interaction_bad_inputs(profile):
    customer = await _customer(profile)
    other = await _customer(profile)
    base = f"/customers/{customer['id']}/interactions"
    good = {"kind": "visit", "channel": "in_person", "author": "am", "summary": "quarterly review"}
    assert (await profile.client.post("/customers/nope/interactions", json=good)).status_code == 404
    assert (await profile.client.get("/customers/nope/interactions")).status_code == 404
    for patch, loc in [
        ({"kind": "party"}, ["body", "kind"]),
        ({"summary": ""}, ["body", "summary"]),
        ({"author": None}, ["body", "author"]),
        ({"next_follow_up": "tomorrow"}, ["body", "next_follow_up"]),
        ({"contact_id": other["contacts"][0]["id"]}, ["body", "contact_id"]),
    ]:
        response = await profile.client.post(base, json=good | patch)
        assert response.status_code == 422 and loc in error_locs(response.json()), (patch, response.text)
    assert (await profile.client.get(base, params={"cursor": "!!"})).status_code == 422


async def test_slice_customer_gets_contacts_added_later(profile):
    created = (await profile.client.post("/customers", json=slice_body(contact=None))).json()
    assert created["contacts"] == []
    response = await profile.client.post(f"/customers/{created['id']}/contacts", json={"name": "Only Name"})
    assert response.status_code == 201 and response.json()["timezone"] == "Asia/Shanghai"


async def test_sub_resources_of_an_unknown_customer_are_404(profile):
    customer = await _customer(profile)
    contact_id = customer["contacts"][0]["id"]
    address_id = customer["addresses"][0]["id"]
    star = {"If-Match": "*"}
    for method, url, kwargs in [
        ("GET", "/customers/nope/contacts", {}),
        ("GET", "/customers/nope/addresses", {}),
        ("GET", f"/customers/nope/contacts/{contact_id}", {}),
        ("GET", f"/customers/nope/addresses/{address_id}", {}),
        ("DELETE", f"/customers/{customer['id']}/contacts/nope", {"headers": star}),
        ("DELETE", f"/customers/{customer['id']}/addresses/nope", {"headers": star}),
        ("PATCH", f"/customers/{customer['id']}/addresses/nope", {"headers": star, "json": {"city": "x"}}),
    ]:
        response = await profile.client.request(method, url, **kwargs)
        assert response.status_code == 404, (method, url, response.text)
    assert (await profile.client.get(f"/customers/{customer['id']}/contacts/{contact_id}")).status_code == 200
