"""Create, read and PATCH a customer through the API, on SQLite and PostgreSQL."""

from sqlalchemy import text

from profile_support import error_locs, full_body, outbox_events, slice_body, token


async def test_create_with_the_slice_body_still_works(profile):
    body = slice_body()
    response = await profile.client.post("/customers", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/customers/{created['id']}"
    assert created["status"] == "prospect" and created["name"] == body["name"]
    [contact] = created["contacts"]
    assert contact["name"] == body["contact"]["name"] and contact["language"] == "zh-CN"
    assert contact["phone"] == "+86" + body["contact"]["phone"].replace(" ", "")


async def test_create_full_record_and_read_it_back(profile):
    body = full_body()
    created = (await profile.client.post("/customers", json=body)).json()
    response = await profile.client.get(f"/customers/{created['id']}")
    assert response.status_code == 200 and response.headers["ETag"] == '"1"'
    got = response.json()
    for field in ("name", "short_name", "industry", "size_band", "region", "registered_address", "status", "account_manager",
                  "source_channel", "first_order_date", "contract_number", "contract_start", "contract_end", "service_types",
                  "payment_days", "tags"):  # fmt: skip
        assert got[field] == body[field], field
    assert got["tax_id"] == body["tax_id"] and got["credit_limit"] == 500000.0
    [contact] = got["contacts"]
    sent = body["contacts"][0]
    assert contact["email"] == sent["email"].lower()
    assert contact["phone"] == "+86" + sent["phone"].replace(" ", "")
    assert (contact["quiet_hours_start"], contact["quiet_hours_end"]) == ("22:00:00", "08:00:00")
    assert contact["marketing_consent"] is True and contact["marketing_consent_source"] == "signed contract"
    assert contact["marketing_consent_at"] is not None
    [address] = got["addresses"]
    assert address["kind"] == "pickup" and address["latitude"] == 31.26 and address["country"] == "CN"


async def test_normalised_phone_and_email_are_what_the_indexed_columns_hold(profile):
    t = token()
    body = slice_body(
        contact={
            "name": "x",
            "phone": "+86 (139) 1234-" + t[:4].translate(str.maketrans("abcdef", "012345")),
            "email": f"MiXeD.{t}@Example.ORG",
        }
    )
    created = (await profile.client.post("/customers", json=body)).json()
    async with profile.db.sessions() as session:
        row = (await session.execute(text("SELECT phone, email FROM contacts WHERE customer_id = :c"), {"c": created["id"]})).one()
    assert row.phone.startswith("+86139") and " " not in row.phone and len(row.phone) == 14
    assert row.email == f"mixed.{t}@example.org"


async def test_create_emits_customer_registered_from_the_full_record(profile):
    body = full_body()
    created = (await profile.client.post("/customers", json=body)).json()
    [event] = await outbox_events(profile.db, key=created["id"])
    assert event.type == "CustomerRegistered" and event.producer == "customer-profile"
    payload = event.parsed()
    assert payload.customer_id == created["id"] and payload.account_manager == "am-zhang"
    assert str(payload.contract_end) == "2026-12-31" and payload.service_types == ["warehousing", "distribution"]
    assert sorted(payload.tags) == sorted(body["tags"]) and payload.credit_limit == 500000.0
    [contact] = payload.contacts
    assert contact.language == "zh-CN" and contact.timezone == "Asia/Shanghai" and contact.marketing_consent is True
    assert str(contact.quiet_hours_start) == "22:00:00" and contact.preferred_channel == "sms"


async def test_create_rejects_bad_fields_with_422_naming_them(profile):
    cases = [
        (slice_body(contact={"name": "a", "phone": "12345"}), ["body", "contact", "phone"]),
        (full_body(contacts=[{"email": "not-an-email"}]), ["body", "contacts", "0", "email"]),
        (full_body(tax_id="#?"), ["body", "tax_id"]),
        (full_body(status="vip"), ["body", "status"]),
        (full_body(service_types=["teleportation"]), ["body", "service_types", "0"]),
        (full_body(contacts=[{"name": "a", "timezone": "Mars/Olympus"}]), ["body", "contacts", "0", "timezone"]),
        (full_body(contacts=[{"name": "a", "language": "fr"}]), ["body", "contacts", "0", "language"]),
        (full_body(payment_days=-1), ["body", "payment_days"]),
        (full_body(addresses=[{"kind": "moon", "line1": "x"}]), ["body", "addresses", "0", "kind"]),
        (slice_body(name=""), ["body", "name"]),
        (slice_body(favourite_colour="red"), ["body", "favourite_colour"]),
        # issue 16: dates outside the plausible window (crm_common.events.bounds)
        (full_body(contract_start="0001-01-01"), ["body", "contract_start"]),
        (full_body(contract_end="9999-12-31"), ["body", "contract_end"]),
        (full_body(first_order_date="9999-01-01"), ["body", "first_order_date"]),
        (full_body(first_order_date="1999-12-31"), ["body", "first_order_date"]),
    ]
    for body, loc in cases:
        response = await profile.client.post("/customers", json=body)
        assert response.status_code == 422, (loc, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert any(found[: len(loc)] == loc for found in error_locs(response.json())), (loc, response.json())
    contract = await profile.client.post("/customers", json=full_body(contract_start="2026-01-01", contract_end="2025-01-01"))
    assert contract.status_code == 422 and "contract_end" in contract.text


async def test_unknown_customer_is_404(profile):
    response = await profile.client.get("/customers/no-such-id")
    assert response.status_code == 404 and response.json()["title"] == "Customer not found"


async def test_patch_needs_the_current_etag(profile):
    created = (await profile.client.post("/customers", json=full_body())).json()
    url = f"/customers/{created['id']}"
    missing = await profile.client.patch(url, json={"status": "dormant"})
    assert missing.status_code == 428
    ok = await profile.client.patch(url, json={"status": "dormant", "tags": ["vip"], "credit_limit": 1000}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.headers["ETag"] == '"2"' and ok.json()["status"] == "dormant" and ok.json()["tags"] == ["vip"]
    stale = await profile.client.patch(url, json={"status": "active"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert (await profile.client.get(url)).json()["status"] == "dormant"
    [registered, updated] = await outbox_events(profile.db, key=created["id"])
    assert updated.type == "CustomerUpdated"
    payload = updated.parsed()
    assert payload.status == "dormant" and payload.tags == ["vip"] and payload.credit_limit == 1000.0
    assert set(payload.changed_fields) == {"status", "tags", "credit_limit"}
    assert len(payload.contacts) == 1  # the full record, not only the changed fields


async def test_patch_bad_inputs(profile):
    a = (await profile.client.post("/customers", json=full_body())).json()
    b = (await profile.client.post("/customers", json=full_body())).json()
    headers = {"If-Match": '"1"'}
    assert (await profile.client.patch("/customers/nope", json={"status": "lost"}, headers=headers)).status_code == 404
    null_name = await profile.client.patch(f"/customers/{a['id']}", json={"name": None}, headers=headers)
    assert null_name.status_code == 422
    assert (await profile.client.patch(f"/customers/{a['id']}", json={}, headers=headers)).status_code == 422
    bad_dates = await profile.client.patch(f"/customers/{a['id']}", json={"contract_end": "2020-01-01"}, headers=headers)
    assert bad_dates.status_code == 422 and ["body", "contract_end"] in error_locs(bad_dates.json())
    dup = await profile.client.patch(f"/customers/{a['id']}", json={"tax_id": b["tax_id"].lower()}, headers=headers)
    assert dup.status_code == 409 and dup.json()["existing_customer_id"] == b["id"]
    assert (await profile.client.get(f"/customers/{a['id']}")).headers["ETag"] == '"1"'


async def test_patch_without_a_change_keeps_the_version(profile):
    created = (await profile.client.post("/customers", json=full_body())).json()
    same = await profile.client.patch(f"/customers/{created['id']}", json={"status": "active"}, headers={"If-Match": "*"})
    assert same.status_code == 200 and same.headers["ETag"] == '"1"'
    assert len(await outbox_events(profile.db, key=created["id"])) == 1


async def test_control_characters_and_malformed_ids_never_reach_the_database(profile):
    """Found by a schemathesis run: PostgreSQL refuses NUL in text (it was a 503); now 422 / 404."""
    import base64

    nul_name = await profile.client.post("/customers", json=slice_body(name="Bad\x00Name"))
    assert nul_name.status_code == 422 and ["body", "name"] in error_locs(nul_name.json())
    nul_tag = await profile.client.post("/customers", json=full_body(tags=["ok", "b\x00d"]))
    assert nul_tag.status_code == 422 and ["body", "tags"] in error_locs(nul_tag.json())
    nul_address = await profile.client.post("/customers", json=full_body(addresses=[{"kind": "pickup", "line1": "x", "city": "a\x00"}]))
    assert nul_address.status_code == 422
    assert (await profile.client.get("/customers/%00")).status_code == 404
    assert (await profile.client.get("/contacts/%00/export")).status_code == 404
    search = await profile.client.get("/customers/search", params={"q": "a\x00b"})
    assert search.status_code == 422 and ["query", "q"] in error_locs(search.json())
    listing = await profile.client.get("/customers", params={"industry": "a\x00"})
    assert listing.status_code == 422
    forged = base64.urlsafe_b64encode(b'{"t": "2026-01-01T00:00:00+00:00", "i": "x\\u0000"}').decode()
    assert (await profile.client.get("/customers", params={"cursor": forged})).status_code == 422
