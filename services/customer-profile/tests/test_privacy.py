"""Export everything held on one contact; erase it so that no profile table still holds the person."""

from sqlalchemy import inspect, text

from profile_support import full_body, outbox_events, token, unique_phone


async def _person(profile):
    t = token()
    phone = unique_phone()
    name = f"Zhou Xinyi{t}"
    email = f"zhou.xinyi.{t}@pearl-example.com"
    body = full_body(
        customer_type="individual", name=name, short_name=f"{name}", registered_address=f"c/o {name}, 9 Binjiang Road, Guangzhou"
    )
    body["contacts"] = [
        {"name": name, "phone": phone, "email": email.upper(), "marketing_consent": True, "marketing_consent_source": "app"},
        {"name": f"Colleague {t}", "phone": unique_phone()},
    ]
    body["addresses"] = [{"kind": "delivery", "label": f"home of {name}", "line1": "9 Binjiang Road", "city": "Guangzhou"}]
    customer = (await profile.client.post("/customers", json=body, headers={"Idempotency-Key": f"person-{t}"})).json()
    contact = customer["contacts"][0]
    national = contact["phone"][3:]
    notes = [
        f"Visited {name} at home, she asked for evening delivery.",
        f"Call back on {national[:3]}-{national[3:7]}-{national[7:]} or mail {email}",
        "Renewal discussed with purchasing; nobody named.",
    ]
    for i, summary in enumerate(notes):
        response = await profile.client.post(
            f"/customers/{customer['id']}/interactions",
            json={
                "kind": "call",
                "channel": "phone",
                "author": "am-he",
                "summary": summary,
                "contact_id": contact["id"] if i == 0 else None,
            },
            headers={"Idempotency-Key": f"note-{t}-{i}"},
        )
        assert response.status_code == 201
    return customer, contact, name, email, national


async def _columns_holding(db, needles: list[str]) -> list[tuple[str, str, str]]:
    """Every (table, column, needle) of the whole database whose value, read as text, contains a needle."""

    def all_columns(connection):
        inspector = inspect(connection)
        return {t: [c["name"] for c in inspector.get_columns(t)] for t in inspector.get_table_names()}

    found = []
    async with db.engine.connect() as connection:
        tables = await connection.run_sync(all_columns)
        assert {"customers", "contacts", "addresses", "interactions", "outbox"} <= set(tables)
        for table, columns in tables.items():
            for column in columns:
                values = (await connection.execute(text(f'SELECT CAST("{column}" AS TEXT) FROM "{table}"'))).scalars().all()
                for needle in needles:
                    if any(v and needle.lower() in v.lower() for v in values):
                        found.append((table, column, needle))
    return found


async def test_export_holds_everything_on_the_person(profile):
    customer, contact, name, email, national = await _person(profile)
    response = await profile.client.get(f"/contacts/{contact['id']}/export")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["contact"]["name"] == name and data["contact"]["email"] == email and data["contact"]["phone"] == "+86" + national
    assert data["marketing_consent"]["given"] is True and data["marketing_consent"]["source"] == "app"
    assert data["customer"]["id"] == customer["id"]
    summaries = [i["summary"] for i in data["interactions"]]
    assert len(summaries) == 2 and all(("Visited" in s or "Call back" in s) for s in summaries)  # linked or mentioning, not the third
    assert (await profile.client.get("/contacts/nope/export")).status_code == 404


async def test_erase_leaves_no_trace_of_the_person_in_any_table(profile):
    customer, contact, name, email, national = await _person(profile)
    needles = [name, email, national, "+86" + national]
    before = await _columns_holding(profile.db, needles)
    assert {t for t, _, _ in before} >= {
        "contacts",
        "interactions",
        "outbox",
        "customers",
        "addresses",
        "idempotency_records",
    }  # the scan sees them

    response = await profile.client.post(f"/contacts/{contact['id']}/erase")
    assert response.status_code == 200, response.text
    assert response.json()["scrubbed_interactions"] == 2

    assert await _columns_holding(profile.db, needles) == []
    tombstone = (await profile.client.get(f"/customers/{customer['id']}/contacts/{contact['id']}")).json()
    assert (
        tombstone["erased"] is True
        and tombstone["name"] == "[erased]"
        and tombstone["phone"] is None
        and tombstone["marketing_consent"] is False
    )
    colleague = customer["contacts"][1]
    still = (await profile.client.get(f"/customers/{customer['id']}/contacts/{colleague['id']}")).json()
    assert still["phone"] == colleague["phone"]  # only the person is forgotten
    log = (await profile.client.get(f"/customers/{customer['id']}/interactions")).json()["items"]
    assert "Renewal discussed with purchasing; nobody named." in [i["summary"] for i in log]
    assert any(i["summary"].startswith("Visited [erased] at home") for i in log)

    [erased] = await outbox_events(profile.db, key=customer["id"], type_="CustomerErased")
    assert erased.parsed().contact_id == contact["id"]
    last_update = (await outbox_events(profile.db, key=customer["id"], type_="CustomerUpdated"))[-1].parsed()
    assert [c.contact_id for c in last_update.contacts] == [colleague["id"]]
    assert (await profile.client.get("/customers/search", params={"phone": national})).json()["items"] == []


async def test_erase_twice_is_harmless_and_erased_contacts_cannot_be_changed(profile):
    customer, contact, *_ = await _person(profile)
    first = await profile.client.post(f"/contacts/{contact['id']}/erase")
    second = await profile.client.post(f"/contacts/{contact['id']}/erase")
    assert second.status_code == 200 and second.json()["erased_at"] == first.json()["erased_at"]
    assert len(await outbox_events(profile.db, key=customer["id"], type_="CustomerErased")) == 1
    version = (await profile.client.get(f"/customers/{customer['id']}/contacts/{contact['id']}")).headers["ETag"]
    blocked = await profile.client.patch(
        f"/customers/{customer['id']}/contacts/{contact['id']}", json={"name": "back"}, headers={"If-Match": version}
    )
    assert blocked.status_code == 409
    assert (await profile.client.post("/contacts/nope/erase")).status_code == 404


async def test_erase_honours_if_match_when_sent(profile):
    customer, contact, *_ = await _person(profile)
    stale = await profile.client.post(f"/contacts/{contact['id']}/erase", headers={"If-Match": '"9"'})
    assert stale.status_code == 412
    assert (await profile.client.get(f"/customers/{customer['id']}/contacts/{contact['id']}")).json()["erased"] is False
    assert (await profile.client.post(f"/contacts/{contact['id']}/erase", headers={"If-Match": '"1"'})).status_code == 200


async def test_erased_phone_can_register_again(profile):
    customer, contact, _, _, national = await _person(profile)
    await profile.client.post(f"/contacts/{contact['id']}/erase")
    again = await profile.client.post(
        "/customers", json=full_body(tax_id=None, contacts=[{"name": "new owner of the number", "phone": national}])
    )
    assert again.status_code == 201, again.text
