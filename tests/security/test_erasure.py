"""Erasure removes a person's PII from every service: the real services and the gateway in-process,
the events of each service delivered to every other service's consumer handlers (InboxProcessor),
then every table and text column of every database is searched for the person's name, phone and
email. A second contact of the same customer must still be found (the search sees the data, and
erasure is targeted)."""

from __future__ import annotations

import pytest
import pytest_asyncio

from security_support import build_stack, digits, find_person

ERASED = {"name": "Ouyang Xiaoming", "phone": "139 8765 4321", "email": "ouyang.xm@erase-me.example"}
KEPT = {"name": "Situ Jianguo", "phone": "137 1122 3344", "email": "situ.jg@keep-me.example"}


def needles(person: dict) -> dict[str, str]:
    return {"name": person["name"], "email": person["email"], "phone": digits(person["phone"])}


SERVICES = ("profile", "scoring", "complaints", "notifications", "gateway")
# bugs reported to the owners (see /tmp/bugs-for-<service>.txt) and not fixed yet: {service: reason}
KNOWN_BUGS: dict[str, str] = {}


async def _ok(response, status=(200, 201, 204)):
    assert response.status_code in status, f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:600]}"
    return response.json() if response.content else None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def erasure(database_factory):
    """One scenario for the module: register, complain, order, set preferences, erase; search before and after."""
    stack = await build_stack(database_factory, "sqlite")
    try:
        yield await _scenario(stack)
    finally:
        await stack.aclose()


async def _scenario(stack) -> dict:
    client = stack.client
    admin, agent, tms = stack.headers("admin"), stack.headers("agent", team="hotline"), stack.headers("tms")

    customer = await _ok(
        await client.post(
            "/api/v1/customers",
            headers=admin,
            json={
                "name": "Erasure Test Trading Co., Ltd.",
                "customer_type": "enterprise",
                "industry": "retail",
                "region": "East China",
                "status": "active",
                "contacts": [
                    {
                        "name": ERASED["name"],
                        "phone": ERASED["phone"],
                        "email": ERASED["email"],
                        "language": "en",
                        "preferred_channel": "email",
                    },
                    {"name": KEPT["name"], "phone": KEPT["phone"], "email": KEPT["email"]},
                ],
            },
        )
    )
    cid = customer["id"]
    contacts = await _ok(await client.get(f"/api/v1/customers/{cid}/contacts", headers=admin))
    person = next(c for c in contacts if c["name"] == ERASED["name"])
    await _ok(
        await client.post(
            f"/api/v1/customers/{cid}/interactions",
            headers=admin,
            json={
                "kind": "call",
                "channel": "phone",
                "author": "am-1",
                "contact_id": person["id"],
                "summary": f"{ERASED['name']} called from {ERASED['phone']} about invoices",
            },
        ),
        (201,),
    )
    await stack.pump()

    # the person files a complaint by phone: reporter details and a call-back number in the text
    complaint = await _ok(
        await client.post(
            "/api/v1/complaints",
            headers=agent,
            json={
                "customer_id": cid,
                "category": "delay",
                "channel": "call_center",
                "tracking_numbers": ["SF7700112233"],
                "description": f"Parcel late. Call back {ERASED['name']} on {ERASED['phone']}",
                "reporter": {"name": ERASED["name"], "phone": ERASED["phone"], "email": ERASED["email"]},
            },
        ),
        (201,),
    )
    await _ok(
        await client.post(
            "/api/v1/events",
            headers=tms,
            json=[
                {
                    "event_id": "6f1c2f8e-0000-4000-8000-00000000e001",
                    "type": "OrderCreated",
                    "payload": {
                        "order_id": "O-ERASE-1",
                        "customer_id": cid,
                        "order_date": "2026-11-20T09:00:00Z",
                        "amount": "1250.50",
                        "service_type": "express",
                    },
                }
            ],
        )
    )
    await stack.pump()
    assert not stack.dead.sent, stack.dead.sent

    before = {name: await find_person(stack.db(name), needles(ERASED)) for name in (*stack.services, "gateway")}
    # the data really reached the services the test claims to search (else the check below proves nothing)
    assert before["profile"] and before["complaints"] and before["notifications"], before

    await _ok(await client.post(f"/api/v1/contacts/{person['id']}/erase", headers=admin))
    await stack.pump()
    assert not stack.dead.sent, stack.dead.sent

    after = {name: await find_person(stack.db(name), needles(ERASED)) for name in (*stack.services, "gateway")}
    kept = {name: await find_person(stack.db(name), needles(KEPT)) for name in (*stack.services, "gateway")}
    print("before erasure:", before)
    print("after erasure:", after)
    reads = {}
    for path in (f"/api/v1/complaints/{complaint['id']}", f"/api/v1/customers/{cid}/360", f"/api/v1/customers/{cid}/contacts"):
        reads[path] = (await client.get(path, headers=admin)).text
    return {"before": before, "after": after, "kept": kept, "reads": reads}


@pytest.mark.asyncio(loop_scope="module")
async def test_erasure_scenario_reached_the_services_and_is_targeted(erasure):
    # the person's data really reached the services searched below (else "nothing found" proves nothing)
    assert erasure["before"]["profile"] and erasure["before"]["complaints"] and erasure["before"]["notifications"], erasure["before"]
    # erasure is targeted: the colleague's contact is still known everywhere it was
    assert erasure["kept"]["profile"] and erasure["kept"]["complaints"] and erasure["kept"]["notifications"], erasure["kept"]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "service", [pytest.param(s, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[s])] if s in KNOWN_BUGS else []) for s in SERVICES]
)
async def test_no_pii_of_the_erased_contact_in_any_table(erasure, service):
    assert erasure["after"][service] == [], f"{service}: PII left after erasure in {erasure['after'][service]}"


@pytest.mark.asyncio(loop_scope="module")
async def test_erased_contact_is_not_read_back_through_the_gateway(erasure):
    for path, text in erasure["reads"].items():
        assert ERASED["email"] not in text and ERASED["name"] not in text and digits(ERASED["phone"]) not in digits(text), path
