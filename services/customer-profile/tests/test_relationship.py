"""What the account manager declares about the relationship: share of wallet, potential volume, relationship level.
Editable on the profile, sent in CustomerRegistered/CustomerUpdated (version 2 on; version 3 today), bad values refused with a 422."""

from profile_support import error_locs, full_body, outbox_events


async def test_declared_relationship_is_stored_and_sent_in_version_2(profile):
    body = full_body(share_of_wallet=0.35, potential_volume="1200000.5", relationship_level="trust")
    response = await profile.client.post("/customers", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["share_of_wallet"], created["potential_volume"], created["relationship_level"]) == (0.35, 1200000.5, "trust")
    url = f"/customers/{created['id']}"
    patched = await profile.client.patch(
        url, json={"relationship_level": "strategic_partner", "share_of_wallet": "0.5"}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    assert (await profile.client.get(url)).json()["relationship_level"] == "strategic_partner"
    registered, updated = await outbox_events(profile.db, key=created["id"])
    assert (registered.type, registered.version, updated.version) == ("CustomerRegistered", 3, 3)
    first, second = registered.parsed(), updated.parsed()
    assert (first.share_of_wallet, str(first.potential_volume), first.relationship_level) == (0.35, "1200000.50", "trust")
    assert (second.share_of_wallet, second.relationship_level) == (0.5, "strategic_partner")
    assert set(second.changed_fields) == {"relationship_level", "share_of_wallet"}


async def test_bad_relationship_values_are_refused_and_change_nothing(profile):
    created = (await profile.client.post("/customers", json=full_body())).json()
    url = f"/customers/{created['id']}"
    for field, value in (
        ("share_of_wallet", 1.5),
        ("share_of_wallet", -0.1),
        ("share_of_wallet", 0.123456),
        ("potential_volume", -1),
        ("potential_volume", "NaN"),
        ("relationship_level", "friends"),
    ):
        response = await profile.client.patch(url, json={field: value}, headers={"If-Match": '"1"'})
        assert response.status_code == 422, (field, value)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert ["body", field] in [loc[:2] for loc in error_locs(response.json())], (field, value)
    assert (await profile.client.get(url)).headers["ETag"] == '"1"'
    cleared = await profile.client.patch(url, json={"relationship_level": None, "potential_volume": None}, headers={"If-Match": '"1"'})
    assert cleared.status_code == 200  # nothing was declared: clearing is no change
    assert cleared.headers["ETag"] == '"1"'
