"""The customer's service-level agreement (issue 20 point 3): per-measure targets that replace the tier's defaults,
kept on the profile, sent in CustomerRegistered/CustomerUpdated version 3, bad input refused with a 422."""

from crm_common.events.customers import CustomerUpdated
from profile_support import error_locs, full_body, outbox_events


async def test_the_agreement_is_stored_and_sent_in_version_3(profile):
    created = (await profile.client.post("/customers", json=full_body())).json()
    url = f"/customers/{created['id']}/service-level-agreement"
    empty = await profile.client.get(url)
    assert empty.status_code == 200 and empty.json()["targets"] == {} and empty.headers["ETag"] == '"1"'

    put = await profile.client.put(url, json={"targets": {"damage_rate_pct": 0.3, "on_time_delivery_pct": 97}}, headers={"If-Match": '"1"'})
    assert put.status_code == 200, put.text
    assert put.json()["targets"] == {"on_time_delivery_pct": 97.0, "damage_rate_pct": 0.3} and put.headers["ETag"] == '"2"'
    assert (await profile.client.get(f"/customers/{created['id']}")).json()["service_level_agreement"] == put.json()["targets"]
    same = await profile.client.put(
        url, json={"targets": {"on_time_delivery_pct": 97, "damage_rate_pct": 0.3}}, headers={"If-Match": '"2"'}
    )
    assert same.status_code == 200 and same.headers["ETag"] == '"2"'  # nothing new: no version, no event

    registered, updated = await outbox_events(profile.db, key=created["id"])
    assert (registered.version, updated.version) == (3, 3) and registered.parsed().service_level_agreement == {}
    sent = updated.parsed()
    assert sent.changed_fields == ["service_level_agreement"]
    assert sent.service_level_agreement == {"on_time_delivery_pct": 97.0, "damage_rate_pct": 0.3}
    # a reader of version 1 reads the version 3 payload as before
    assert CustomerUpdated.model_validate(updated.payload).name == created["name"]

    back = await profile.client.put(url, json={"targets": {}}, headers={"If-Match": '"2"'})
    assert back.status_code == 200 and back.json()["targets"] == {}


async def test_bad_agreements_are_refused_and_change_nothing(profile):
    created = (await profile.client.post("/customers", json=full_body())).json()
    url = f"/customers/{created['id']}/service-level-agreement"
    for targets in (
        {"on_time": 90},  # unknown measure
        {"on_time_delivery_pct": 100.5},  # a percentage above 100
        {"damage_rate_pct": -1},  # negative
        {"mean_resolution_hours": "NaN"},
        {"billing_corrections": "many"},
    ):
        response = await profile.client.put(url, json={"targets": targets}, headers={"If-Match": '"1"'})
        assert response.status_code == 422, (targets, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert ["body", "targets"] in [loc[:2] for loc in error_locs(response.json())], targets
    other = await profile.client.put(url, json={"targets": {}, "tier": "small"}, headers={"If-Match": '"1"'})
    assert other.status_code == 422
    missing = await profile.client.put(url, json={"targets": {"on_time_delivery_pct": 97}})
    assert missing.status_code == 428
    stale = await profile.client.put(url, json={"targets": {"on_time_delivery_pct": 97}}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    unknown = await profile.client.put(
        "/customers/00000000-0000-4000-8000-000000000000/service-level-agreement", json={"targets": {}}, headers={"If-Match": '"1"'}
    )
    assert unknown.status_code == 404
    assert (await profile.client.get(url)).headers["ETag"] == '"1"'
    assert len(await outbox_events(profile.db, key=created["id"])) == 1  # only the registration
