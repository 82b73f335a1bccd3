"""Object-level authorization through the gateway in front of the REAL services (in-process): a
customer A, and an account manager of A, cannot read or change B's profile, contacts, complaints,
scores, deliveries or preferences by any id, nor see B in any search result or 360 view.

The role table itself (every route x every role) is the gateway's test
(services/gateway/tests/test_authorization.py, against fake upstreams); this one checks that the
object checks hold with the services' real answers, ids and list shapes.
"""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio

from security_support import build_stack, digits

pytestmark = pytest.mark.asyncio(loop_scope="module")

A = {
    "name": "Alpha Cold Chain Shared Co.",
    "contact": "Qian Alpha",
    "phone": "139 0000 1111",
    "email": "qian@alpha.example",
    "tracking": "SFA1000000001",
    "am": "am-alpha",
}
B = {
    "name": "Bravo Electronics Shared Co.",
    "contact": "Sun Bravo",
    "phone": "137 0000 2222",
    "email": "sun@bravo.example",
    "tracking": "SFB2000000002",
    "am": "am-bravo",
}


async def _ok(response, status=(200, 201, 204)):
    assert response.status_code in status, f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:600]}"
    return response.json() if response.content else None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(database_factory):
    """Two customers with contacts, orders, scores, complaints and notifications in every service."""
    stack = await build_stack(database_factory, "sqlite")
    client = stack.client
    admin, agent, tms = stack.headers("admin"), stack.headers("agent", team="hotline"), stack.headers("tms")
    ids = {}
    try:
        for key, c in (("A", A), ("B", B)):
            customer = await _ok(
                await client.post(
                    "/api/v1/customers",
                    headers=admin,
                    json={
                        "name": c["name"],
                        "customer_type": "enterprise",
                        "industry": "retail",
                        "status": "active",
                        "account_manager": c["am"],
                        "contacts": [{"name": c["contact"], "phone": c["phone"], "email": c["email"], "language": "en"}],
                        "addresses": [{"kind": "pickup", "line1": f"{c['contact']} warehouse", "city": "Shanghai", "province": "Shanghai"}],
                    },
                )
            )
            cid = customer["id"]
            contact = (await _ok(await client.get(f"/api/v1/customers/{cid}/contacts", headers=admin)))[0]
            address = (await _ok(await client.get(f"/api/v1/customers/{cid}/addresses", headers=admin)))[0]
            ids[key] = {"customer": cid, "contact": contact["id"], "address": address["id"]}
        await stack.pump()
        events = []
        for key in ("A", "B"):
            for n in range(3):
                events.append(
                    {
                        "event_id": str(uuid.uuid4()),
                        "type": "OrderCreated",
                        "payload": {
                            "order_id": f"O-{key}-{n}",
                            "customer_id": ids[key]["customer"],
                            "order_date": f"2026-10-0{n + 1}T09:00:00Z",
                            "amount": "900.00",
                            "service_type": "express",
                        },
                    }
                )
        await _ok(await client.post("/api/v1/events", headers=tms, json=events))
        for key, c in (("A", A), ("B", B)):
            complaint = await _ok(
                await client.post(
                    "/api/v1/complaints",
                    headers=agent,
                    json={
                        "customer_id": ids[key]["customer"],
                        "category": "delay",
                        "channel": "call_center",
                        "tracking_numbers": [c["tracking"]],
                        "description": "Parcel late",
                        "reporter": {"name": c["contact"], "phone": c["phone"], "email": c["email"]},
                    },
                ),
                (201,),
            )
            ids[key].update(complaint=complaint["id"], number=complaint["number"])
        await stack.pump()
        await _ok(await client.post("/api/v1/admin/recompute", headers=admin))
        await stack.pump()
        for key in ("A", "B"):
            await _ok(await client.put(f"/api/v1/preferences/contacts/{ids[key]['contact']}", headers=admin, json={"categories": {}}))
            deliveries = await _ok(await client.get("/api/v1/deliveries", params={"customer_id": ids[key]["customer"]}, headers=admin))
            ids[key]["delivery"] = deliveries[0]["id"] if deliveries else "no-delivery"
        assert not stack.dead.sent, stack.dead.sent
        yield stack, ids
    finally:
        await stack.aclose()


def b_markers(ids) -> list[str]:
    return [B["name"], B["contact"], B["email"], digits(B["phone"]), B["tracking"], ids["B"]["number"]]


def assert_no_b(text: str, ids, path: str, params: dict | None = None) -> None:
    text = text.replace(path, "")  # a problem's `instance` echoes the path asked for
    for value in (params or {}).values():  # and a search echoes its query
        text = text.replace(f'"{value}"', '""')
    for marker in b_markers(ids):
        haystack = digits(text) if marker.isdigit() else text
        assert marker not in haystack, f"{path}: {marker!r} leaked: {text[:400]}"


def attacks(ids) -> list[tuple[str, str, dict | None, dict | None]]:
    """(method, path, params, json) aimed at B's objects."""
    b = ids["B"]
    return [
        ("GET", f"/api/v1/customers/{b['customer']}", None, None),
        ("GET", f"/api/v1/customers/{b['customer']}/contacts", None, None),
        ("GET", f"/api/v1/customers/{b['customer']}/contacts/{b['contact']}", None, None),
        ("GET", f"/api/v1/customers/{b['customer']}/addresses", None, None),
        ("GET", f"/api/v1/customers/{b['customer']}/addresses/{b['address']}", None, None),
        ("GET", f"/api/v1/customers/{b['customer']}/interactions", None, None),
        ("GET", f"/api/v1/customers/{b['customer']}/360", None, None),
        ("PATCH", f"/api/v1/customers/{b['customer']}", None, {"industry": "hijacked"}),
        ("POST", f"/api/v1/customers/{b['customer']}/contacts", None, {"name": "Mallory", "email": "mallory@evil.example"}),
        ("PATCH", f"/api/v1/customers/{b['customer']}/contacts/{b['contact']}", None, {"email": "mallory@evil.example"}),
        ("DELETE", f"/api/v1/customers/{b['customer']}/contacts/{b['contact']}", None, None),
        (
            "POST",
            f"/api/v1/customers/{b['customer']}/interactions",
            None,
            {"kind": "call", "channel": "phone", "author": "x", "summary": "x"},
        ),
        ("GET", f"/api/v1/contacts/{b['contact']}/export", None, None),
        ("POST", f"/api/v1/contacts/{b['contact']}/erase", None, None),
        ("GET", f"/api/v1/scores/{b['customer']}", None, None),
        ("GET", f"/api/v1/complaints/{b['complaint']}", None, None),
        ("GET", f"/api/v1/complaints/{b['complaint']}/timeline", None, None),
        ("POST", f"/api/v1/complaints/{b['complaint']}/survey", None, {"score": 1, "comment": "sabotage"}),
        ("POST", f"/api/v1/complaints/{b['complaint']}/customer-messages", None, {"body": "please close this"}),
        ("POST", f"/api/v1/complaints/{b['complaint']}/resolve", None, {"outcome": "closed by someone else"}),
        ("POST", f"/api/v1/complaints/{b['complaint']}/notes", None, {"body": "x"}),
        ("GET", "/api/v1/complaints/lookup", {"number": b["number"]}, None),
        ("GET", "/api/v1/complaints/lookup", {"tracking_number": B["tracking"]}, None),
        ("GET", "/api/v1/complaints/lookup", {"phone": B["phone"]}, None),
        ("GET", "/api/v1/complaints/lookup", {"customer_id": b["customer"]}, None),
        ("POST", "/api/v1/complaints", None, {"customer_id": b["customer"], "category": "delay", "channel": "web", "description": "x"}),
        ("GET", "/api/v1/deliveries", {"customer_id": b["customer"]}, None),
        ("GET", f"/api/v1/deliveries/{b['delivery']}", None, None),
        ("GET", f"/api/v1/preferences/contacts/{b['contact']}", None, None),
        ("PUT", f"/api/v1/preferences/contacts/{b['contact']}", None, {"categories": {"*": "opt_out"}}),
        ("GET", "/api/v1/search", {"q": "Bravo"}, None),
        ("GET", "/api/v1/search", {"q": B["phone"]}, None),
        ("GET", "/api/v1/customers/search", {"q": "Bravo"}, None),
        ("GET", "/api/v1/customers/search", {"phone": B["phone"]}, None),
        ("GET", "/api/v1/customers", None, None),
        ("GET", "/api/v1/complaints", None, None),
        ("GET", "/api/v1/scores", None, None),
    ]


async def _attack_all(stack, ids, headers) -> list[str]:
    problems = []
    for method, path, params, body in attacks(ids):
        response = await stack.client.request(method, path, params=params, json=body, headers=headers)
        if response.status_code >= 500 or response.status_code == 401:
            problems.append(f"{method} {path} {params}: {response.status_code}")
        elif method != "GET" and response.status_code < 300:
            problems.append(f"{method} {path}: {response.status_code}, a write on B's object was accepted")
        try:
            assert_no_b(response.text, ids, path, params)
        except AssertionError as exc:
            problems.append(f"{method} {path} {params}: {exc}")
    return problems


async def _b_unchanged(stack, ids) -> None:
    admin = stack.headers("admin")
    b = ids["B"]
    profile = await _ok(await stack.client.get(f"/api/v1/customers/{b['customer']}", headers=admin))
    assert profile["industry"] == "retail"
    contacts = await _ok(await stack.client.get(f"/api/v1/customers/{b['customer']}/contacts", headers=admin))
    assert [(c["id"], c["email"]) for c in contacts] == [(b["contact"], B["email"])]
    complaint = await _ok(await stack.client.get(f"/api/v1/complaints/{b['complaint']}", headers=admin))
    assert complaint["status"] not in ("resolved", "closed") and complaint["survey_score"] is None
    timeline = await _ok(await stack.client.get(f"/api/v1/complaints/{b['complaint']}/timeline", headers=admin))
    assert not any("please close this" in str(entry) or "sabotage" in str(entry) for entry in timeline)
    preferences = await _ok(await stack.client.get(f"/api/v1/preferences/contacts/{b['contact']}", headers=admin))
    assert all(c["opted_in"] is not False for c in preferences["categories"] if c["kind"] != "marketing"), preferences


async def test_own_objects_are_readable_so_refusals_are_about_ownership(world):
    stack, ids = world
    a = ids["A"]
    customer = stack.headers("customer", "portal-alpha", customer_id=a["customer"])
    for path in (
        f"/api/v1/customers/{a['customer']}",
        f"/api/v1/customers/{a['customer']}/contacts",
        f"/api/v1/customers/{a['customer']}/360",
        f"/api/v1/scores/{a['customer']}",
        f"/api/v1/complaints/{a['complaint']}",
        f"/api/v1/complaints/{a['complaint']}/timeline",
    ):
        response = await stack.client.get(path, headers=customer)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    own = await _ok(await stack.client.get("/api/v1/complaints/lookup", headers=customer))
    assert [item["complaint"]["number"] for item in own] == [a["number"]]
    deliveries = await _ok(await stack.client.get("/api/v1/deliveries", headers=customer))
    assert deliveries and {d["customer_id"] for d in deliveries} == {a["customer"]}


async def test_customer_a_cannot_read_or_change_anything_of_b(world):
    stack, ids = world
    customer = stack.headers("customer", "portal-alpha", customer_id=ids["A"]["customer"])
    problems = await _attack_all(stack, ids, customer)
    assert not problems, "\n".join(problems)
    await _b_unchanged(stack, ids)


@pytest.mark.parametrize("claims", [{}, {"customers": "A"}], ids=["checked-against-profile", "customers-claim"])
async def test_account_manager_of_a_cannot_reach_b_and_lists_are_filtered(world, claims):
    stack, ids = world
    extra = {"customers": [ids["A"]["customer"]]} if claims else {}
    manager = stack.headers("account_manager", A["am"], **extra)
    problems = await _attack_all(stack, ids, manager)
    assert not problems, "\n".join(problems)
    await _b_unchanged(stack, ids)
    # lists and searches keep A (the manager's own customer) and drop B
    listing = await _ok(await stack.client.get("/api/v1/customers", headers=manager))
    assert [c["id"] for c in listing["items"]] == [ids["A"]["customer"]]
    found = await _ok(await stack.client.get("/api/v1/customers/search", params={"q": "Shared"}, headers=manager))
    assert [c["id"] for c in found["items"]] == [ids["A"]["customer"]]
    complaints = await _ok(await stack.client.get("/api/v1/complaints", headers=manager))
    items = complaints["items"] if isinstance(complaints, dict) else complaints
    assert [c["id"] for c in items] == [ids["A"]["complaint"]]
    scores = await _ok(await stack.client.get("/api/v1/scores", headers=manager))
    assert [s["customer_id"] for s in scores["items"]] == [ids["A"]["customer"]]
