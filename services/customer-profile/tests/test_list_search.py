"""List with filters and search, both with keyset cursors that stay correct while rows are inserted."""

from profile_support import error_locs, full_body, slice_body, token, unique_phone


async def _pages(client, url: str, params: dict, *, between=None) -> list[str]:
    """Walk every page; `between(page_number)` may insert rows between two page reads."""
    ids, cursor, page = [], None, 0
    while True:
        response = await client.get(url, params=params | ({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        data = response.json()
        ids += [c["id"] for c in data["items"]]
        cursor = data["next_cursor"]
        page += 1
        if cursor is None:
            return ids
        if between is not None:
            await between(page)


async def test_filters_select_exactly_the_matching_customers(profile):
    t = token()
    made = {}
    specs = [
        ("a", dict(status="active", industry=f"ind-{t}", region="North", account_manager=f"am-{t}", tags=[f"tag-{t}"])),
        ("b", dict(status="dormant", industry=f"ind-{t}", region="South", account_manager=f"am-{t}", tags=[])),
        ("c", dict(status="active", industry=f"other-{t}", region="North", account_manager=f"am2-{t}", tags=[f"tag-{t}", "vip"])),
    ]
    for label, fields in specs:
        made[label] = (await profile.client.post("/customers", json=full_body(**fields))).json()["id"]

    async def ids(**params):
        response = await profile.client.get("/customers", params=params)
        assert response.status_code == 200, response.text
        return {c["id"] for c in response.json()["items"]}

    assert await ids(industry=f"ind-{t}") == {made["a"], made["b"]}
    assert await ids(industry=f"ind-{t}", status="active") == {made["a"]}
    assert await ids(account_manager=f"am-{t}", region="South") == {made["b"]}
    assert await ids(tag=f"tag-{t}") == {made["a"], made["c"]}
    assert await ids(tag=f"tag-{t}", region="North", status="dormant") == set()


async def test_list_pagination_is_stable_when_rows_are_inserted_between_pages(profile):
    tag = f"page-{token()}"
    first = [(await profile.client.post("/customers", json=full_body(tags=[tag]))).json()["id"] for _ in range(5)]
    later = []

    async def insert(page):
        if page <= 2:
            for _ in range(2):
                later.append((await profile.client.post("/customers", json=full_body(tags=[tag]))).json()["id"])

    seen = await _pages(profile.client, "/customers", {"tag": tag, "limit": 2}, between=insert)
    assert len(seen) == len(set(seen)), "a row was served twice"
    assert seen == first + later  # creation order, nothing skipped, the new rows at the end


async def test_search_by_name_phone_email_and_tax_id(profile):
    t = token()
    phone = unique_phone()
    body = full_body(name=f"Suzhou Silk Road {t} Logistics", short_name=f"SSR{t}")
    body["contacts"][0].update(phone=phone, email=f"Zhao.Min.{t}@silk-example.cn")
    target = (await profile.client.post("/customers", json=body)).json()["id"]
    await profile.client.post("/customers", json=full_body())  # noise

    async def ids(**params):
        response = await profile.client.get("/customers/search", params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    national = phone.replace(" ", "")
    assert await ids(name=f"silk road {t}".upper()) == [target]
    assert await ids(name=f"ssr{t}") == [target]
    assert await ids(phone=f"+86-{national[:3]}-{national[3:7]}-{national[7:]}") == [target]
    assert await ids(phone=f"0086{national}") == [target]
    assert await ids(email=f"zhao.min.{t}@SILK-EXAMPLE.CN") == [target]
    assert await ids(tax_id=" ".join(body["tax_id"].lower())) == [target]
    for q in (f"Silk Road {t}", national, f"ZHAO.MIN.{t}@silk-example.cn", body["tax_id"]):
        assert await ids(q=q) == [target], q
    assert await ids(name=f"silk road {t}", phone=unique_phone()) == []  # named parameters all have to match


async def test_search_pagination_is_stable_when_rows_are_inserted_between_pages(profile):
    t = token()
    first = [(await profile.client.post("/customers", json=slice_body(name=f"Kunming Flower {t} #{i}"))).json()["id"] for i in range(4)]
    later = []

    async def insert(page):
        if page == 1:
            for i in range(3):
                later.append((await profile.client.post("/customers", json=slice_body(name=f"Kunming Flower {t} new{i}"))).json()["id"])

    seen = await _pages(profile.client, "/customers/search", {"q": f"flower {t}", "limit": 3}, between=insert)
    assert seen == first + later


async def test_list_and_search_bad_inputs_are_422(profile):
    for url, params, loc in [
        ("/customers", {"cursor": "not-a-cursor"}, ["query", "cursor"]),
        ("/customers", {"limit": 0}, ["query", "limit"]),
        ("/customers", {"status": "vip"}, ["query", "status"]),
        ("/customers/search", {}, ["query", "q"]),
        ("/customers/search", {"phone": "12"}, ["query", "phone"]),
        ("/customers/search", {"tax_id": "?!"}, ["query", "tax_id"]),
        ("/customers/search", {"q": "x", "cursor": "eyJ0IjogMX0"}, ["query", "cursor"]),
    ]:
        response = await profile.client.get(url, params=params)
        assert response.status_code == 422, (url, params, response.text)
        assert loc in error_locs(response.json()), (loc, response.json())


async def test_search_finds_chinese_names_by_substring(profile):
    t = token()
    body = slice_body(name=f"杭州鲜果汇农产品有限公司{t}")
    body["short_name"] = f"鲜果汇{t}"
    target = (await profile.client.post("/customers", json=body)).json()["id"]
    for q in (f"鲜果汇农产品有限公司{t}", f"鲜果汇{t}"):
        response = await profile.client.get("/customers/search", params={"q": q})
        assert [c["id"] for c in response.json()["items"]] == [target], q
