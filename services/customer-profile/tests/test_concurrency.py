"""Two writers holding the same ETag: exactly one wins, the other gets 412 (not a lost update)."""

import asyncio

from profile_support import full_body


async def test_concurrent_patches_with_the_same_etag_one_wins(profile):
    created = (await profile.client.post("/customers", json=full_body())).json()
    url = f"/customers/{created['id']}"
    responses = await asyncio.gather(
        *[profile.client.patch(url, json={"account_manager": f"am-{i}"}, headers={"If-Match": '"1"'}) for i in range(4)]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 412, 412, 412], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    final = (await profile.client.get(url)).json()
    assert final["version"] == 2 and final["account_manager"] == winner["account_manager"]


async def test_a_write_based_on_a_stale_read_is_refused_by_the_database(profile):
    """The If-Match check and the UPDATE are not atomic; the version column closes the gap."""
    import pytest
    from sqlalchemy.orm.exc import StaleDataError

    from crm_profile.customers import service
    from crm_profile.customers.schemas import CustomerPatch

    created = (await profile.client.post("/customers", json=full_body())).json()
    async with profile.db.sessions() as slow:
        async with slow.begin():
            stale = await service.get_customer(slow, created["id"])
            service.check_if_match('"1"', stale.version)  # passes: nobody has written yet
            async with profile.db.transaction() as fast:
                await service.update_customer(fast, created["id"], CustomerPatch(status="lost"), '"1"')
            stale.status = "dormant"
            with pytest.raises(StaleDataError):
                await slow.flush()
    final = (await profile.client.get(f"/customers/{created['id']}")).json()
    assert final["status"] == "lost" and final["version"] == 2


async def test_concurrent_creates_of_the_same_person_give_one_customer(profile):
    """The duplicate check and the insert are serialised per phone/email/tax id: no twin slips through."""
    from profile_support import unique_phone

    phone = unique_phone()
    bodies = [full_body(tax_id=None, contacts=[{"name": f"twin {i}", "phone": phone}]) for i in range(4)]
    responses = await asyncio.gather(*[profile.client.post("/customers", json=b) for b in bodies])
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409], [r.text for r in responses]
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    assert all(r.json()["existing_customer_id"] == winner for r in responses if r.status_code == 409)


async def test_a_lost_race_detected_by_the_version_column_is_a_412_problem(profile):
    import httpx
    from sqlalchemy.orm.exc import StaleDataError

    from crm_devbroker.testing import edge_auth
    from crm_profile.main import create_app
    from crm_profile.settings import ProfileSettings

    app = create_app(ProfileSettings(database_url=profile.url), start_background=False)

    async def lost_race():
        raise StaleDataError("UPDATE statement on table 'customers' expected to update 1 row(s); 0 were matched.")

    app.add_api_route("/lost-race", lost_race, methods=["PATCH"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://profile", auth=edge_auth(app)) as client:
        response = await client.patch("/lost-race")
    await app.state.runtime.stop()
    assert response.status_code == 412 and response.headers["content-type"].startswith("application/problem+json")
