"""Input limits and injection attempts, through the gateway in front of the real services:
body size (413 problem, declared or chunked), batch size, string lengths and page sizes (422),
SQL injection in search parameters and ids (inert: no 5xx, no extra rows, tables intact), template
injection in the notifications service's sandboxed Jinja2 (refused or rendered inert)."""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio
from sqlalchemy import func, select, text

from crm_common.limits import DEFAULT_MAX_BODY_BYTES
from crm_common.outbox import outbox_table
from security_support import build_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(database_factory):
    s = await build_stack(database_factory, "sqlite")
    admin = s.headers("admin")
    for name, phone in (("Limit Test Logistics", "139 5555 0001"), ("Other Shipper", "139 5555 0002")):
        response = await s.client.post(
            "/api/v1/customers", headers=admin, json={"name": name, "status": "active", "contacts": [{"name": "Zhou", "phone": phone}]}
        )
        assert response.status_code == 201, response.text
    await s.pump()
    yield s
    await s.aclose()


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:400]}"
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers["content-type"]
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


# ------------------------------------------------------------------ body size


@pytest.mark.parametrize(
    "service,path",
    [
        ("profile", "/customers"),
        ("complaints", "/complaints"),
        ("notifications", "/templates"),
        ("scoring", "/admin/recompute"),
    ],
)
async def test_every_service_refuses_an_oversized_body_with_413(stack, service, path):
    client = stack.services[service].client
    big = b'{"name": "' + b"x" * (DEFAULT_MAX_BODY_BYTES + 10) + b'"}'
    declared = await client.post(
        path, content=big, headers={"Content-Type": "application/json", "X-Actor-Role": "admin", "X-Actor-Id": "a"}
    )
    assert assert_problem(declared, 413)["max_bytes"] == DEFAULT_MAX_BODY_BYTES

    async def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(DEFAULT_MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    chunked = await client.post(
        path, content=chunks(), headers={"Content-Type": "application/json", "X-Actor-Role": "admin", "X-Actor-Id": "a"}
    )
    assert_problem(chunked, 413)
    # just under the limit the request reaches the application (which judges the content itself)
    small = await client.post(
        path,
        content=b'{"name": "' + b"x" * 1000 + b'"}',
        headers={"Content-Type": "application/json", "X-Actor-Role": "admin", "X-Actor-Id": "a"},
    )
    assert small.status_code != 413


async def test_gateway_refuses_an_oversized_body_before_authentication_and_forwarding(stack):
    limit = stack.settings.ingest_max_body_bytes
    big = b"[" + b" " * (limit + 10) + b"]"
    for path in ("/api/v1/events", "/api/v1/customers"):
        for headers in ({}, stack.headers("admin")):
            assert_problem(await stack.client.post(path, content=big, headers={"Content-Type": "application/json", **headers}), 413)


async def test_event_batch_over_the_limit_is_refused_whole(stack):
    max_batch = stack.settings.ingest_max_batch
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "type": "OrderCreated",
            "payload": {
                "order_id": f"O-LIM-{i}",
                "customer_id": "C-LIM",
                "order_date": "2026-11-20T09:00:00Z",
                "amount": "1.00",
                "service_type": "express",
            },
        }
        for i in range(max_batch + 1)
    ]
    async with stack.db("gateway").sessions() as session:
        before = await session.scalar(select(func.count()).select_from(outbox_table))
    body = assert_problem(await stack.client.post("/api/v1/events", json=events, headers=stack.headers("tms")), 413)
    assert body["max_batch"] == max_batch
    async with stack.db("gateway").sessions() as session:
        assert await session.scalar(select(func.count()).select_from(outbox_table)) == before  # nothing of it was accepted
    ok = await stack.client.post("/api/v1/events", json=events[:max_batch], headers=stack.headers("tms"))
    assert ok.status_code == 200 and ok.json()["accepted"] == max_batch


# ------------------------------------------------------------------ string lengths and page sizes


@pytest.mark.parametrize(
    "method,path,body,field",
    [
        ("POST", "/api/v1/customers", {"name": "N" * 201}, "name"),
        ("POST", "/api/v1/customers", {"name": "ok", "contacts": [{"name": "x", "email": "a" * 250 + "@x.example"}]}, "email"),
        ("POST", "/api/v1/customers", {"name": "ok", "contacts": [{"name": f"c{i}"} for i in range(51)]}, "contacts"),
        (
            "POST",
            "/api/v1/complaints",
            {"customer_id": "x", "category": "delay", "channel": "web", "description": "d" * 5001},
            "description",
        ),
        (
            "POST",
            "/api/v1/complaints",
            {"customer_id": "x" * 101, "category": "delay", "channel": "web", "description": "d"},
            "customer_id",
        ),
        ("POST", "/api/v1/templates", {"key": "k", "language": "en", "subject": "s" * 1001, "body": "b"}, "subject"),
        ("POST", "/api/v1/templates", {"key": "k", "language": "en", "subject": "s", "body": "b" * 50_001}, "body"),
    ],
)
async def test_overlong_strings_and_lists_are_422_with_the_field_named(stack, method, path, body, field):
    response = await stack.client.request(method, path, json=body, headers=stack.headers("admin"))
    problem = assert_problem(response, 422)
    assert any(field in [str(p) for p in error["loc"]] for error in problem.get("errors", [])), problem


@pytest.mark.parametrize(
    "path,params",
    [
        ("/api/v1/customers", {"limit": 100_000}),
        ("/api/v1/customers", {"limit": 0}),
        ("/api/v1/customers/search", {"q": "x", "limit": 100_000}),
        ("/api/v1/customers/search", {"q": "x" * 10_000}),
        ("/api/v1/scores", {"limit": 100_000}),
        ("/api/v1/scores", {"limit": -1}),
        ("/api/v1/complaints", {"limit": 100_000}),
        ("/api/v1/complaints/lookup", {"customer_id": "x", "limit": 100_000}),
        ("/api/v1/deliveries", {"customer_id": "x", "limit": 100_000}),
    ],
)
async def test_page_sizes_and_query_lengths_are_bounded(stack, path, params):
    response = await stack.client.get(path, params=params, headers=stack.headers("admin"))
    assert_problem(response, 422)


# ------------------------------------------------------------------ SQL injection

SQL_PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "%' OR '%'='",
    "'; DROP TABLE customers; --",
    "1; DELETE FROM complaints",
    '" OR ""="',
    "x' UNION SELECT name, sql FROM sqlite_master --",
    "\\'; SELECT pg_sleep(5); --",
]


async def _counts(stack) -> dict[str, int]:
    out = {}
    for service, table in (
        ("profile", "customers"),
        ("profile", "contacts"),
        ("complaints", "complaints"),
        ("notifications", "nf_templates"),
    ):
        async with stack.db(service).sessions() as session:
            out[f"{service}.{table}"] = await session.scalar(text(f"SELECT COUNT(*) FROM {table}"))
    return out


@pytest.mark.parametrize("payload", SQL_PAYLOADS)
async def test_sql_injection_in_search_parameters_and_ids_is_inert(stack, payload):
    admin = stack.headers("admin")
    before = await _counts(stack)
    requests = [
        ("/api/v1/customers/search", {"q": payload}),
        ("/api/v1/customers/search", {"name": payload}),
        ("/api/v1/customers/search", {"phone": payload}),
        ("/api/v1/customers/search", {"email": payload}),
        ("/api/v1/customers", {"industry": payload}),
        ("/api/v1/customers", {"tag": payload}),
        ("/api/v1/complaints/lookup", {"phone": payload}),
        ("/api/v1/complaints/lookup", {"number": payload}),
        ("/api/v1/complaints/lookup", {"tracking_number": payload}),
        ("/api/v1/complaints/lookup", {"customer_id": payload}),
        ("/api/v1/complaints", {"status": payload}),
        ("/api/v1/scores", {"segment": payload[:30]}),
        ("/api/v1/deliveries", {"customer_id": payload}),
        ("/api/v1/search", {"q": payload}),
    ]
    for path, params in requests:
        response = await stack.client.get(path, params=params, headers=admin)
        assert response.status_code in (200, 400, 404, 422), f"{path} {params}: {response.status_code} {response.text[:300]}"
        if response.status_code == 200:
            data = response.json()
            items = data.get("items", data.get("customers", [])) if isinstance(data, dict) else data
            assert items == [], f"{path} {params}: the injection matched rows: {str(items)[:300]}"
    for path in (f"/api/v1/customers/{payload}", f"/api/v1/complaints/{payload}", f"/api/v1/scores/{payload}"):
        response = await stack.client.get(path, headers=admin)
        assert response.status_code in (400, 404, 422), f"{path}: {response.status_code} {response.text[:300]}"
    assert await _counts(stack) == before


# ------------------------------------------------------------------ template injection (sandboxed Jinja2)

SSTI = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ 'a'.format.__globals__ }}",
]
# what evaluated output looks like (repr of classes, functions, modules, dicts of globals, `id` output);
# none of these appears in the payloads or in a refusal message that only names the attribute
LEAK_MARKERS = ("<class", "<function", "<module", "<built-in", "<bound method", "'__name__'", "uid=", "gid=", "Popen")


@pytest.mark.parametrize("payload", SSTI)
async def test_template_injection_is_refused_or_inert(stack, payload):
    admin = stack.headers("admin")
    key = f"ssti-{uuid.uuid4().hex[:8]}"
    saved = await stack.client.post(
        "/api/v1/templates", headers=admin, json={"key": key, "language": "en", "subject": "Hi", "body": payload}
    )
    assert saved.status_code in (201, 422), f"{saved.status_code} {saved.text[:300]}"
    previews = [
        await stack.client.post(
            f"/api/v1/templates/{key}/preview", headers=admin, json={"template": {"subject": "Hi", "body": payload}, "data": {}}
        )
    ]
    if saved.status_code == 201:
        previews.append(await stack.client.post(f"/api/v1/templates/{key}/preview", headers=admin, json={"language": "en", "data": {}}))
    for response in previews:
        assert response.status_code in (200, 400, 422), f"{response.status_code} {response.text[:300]}"
        rendered = response.json().get("body", "") if response.status_code == 200 else response.text
        for marker in LEAK_MARKERS:
            assert marker not in rendered, f"{payload!r} rendered {rendered[:300]!r}"


async def test_template_syntax_in_data_is_rendered_literally(stack):
    """A customer or contact name like '{{ 7*7 }}' is data: it is printed, never evaluated."""
    admin = stack.headers("admin")
    templates = (await stack.client.get("/api/v1/templates", headers=admin)).json()
    assert templates, "the notifications service seeds its default templates"
    draft = {"subject": "Dear {{ contact_name }}", "body": "Hello {{ contact_name }}", "variables": ["contact_name"]}
    check = await stack.client.post(
        f"/api/v1/templates/{templates[0]['key']}/preview", headers=admin, json={"template": draft, "data": {"contact_name": "x"}}
    )
    if check.status_code != 200:  # the draft's variable is not in the catalog: use one the default template declares
        variable = templates[0]["variables"][0]
        draft = {"subject": "Dear {{ " + variable + " }}", "body": "Hello {{ " + variable + " }}", "variables": [variable]}
    else:
        variable = "contact_name"
    payload = "{{ 7*7 }} {% if True %}evaluated{% endif %} {{ ''.__class__ }}"
    response = await stack.client.post(
        f"/api/v1/templates/{templates[0]['key']}/preview", headers=admin, json={"template": draft, "data": {variable: payload}}
    )
    assert response.status_code == 200, response.text
    body = response.json()["body"]
    assert payload in body and "49" not in body and "<class" not in body, body
