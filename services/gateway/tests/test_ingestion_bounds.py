"""The bad events of issue 16, posted through the gateway: each is refused at the edge with its reason, the
batch's other events are accepted, and every accepted event is applied by every consumer (none dead-lettered)."""

from __future__ import annotations

import datetime as dt

import pytest

pytest.importorskip("crm_scoring", reason="scoring service not installed")

from crm_common.events.bounds import MAX_DAYS_OVERDUE, MAX_MONEY, MAX_QUANTITY  # noqa: E402
from gateway_support import new_event, role_headers  # noqa: E402
from ingest_downstream import build_downstream  # noqa: E402

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _bad(event_type: str, *, envelope: dict | None = None, **payload) -> dict:
    event = new_event(event_type, "C-BOUNDS")
    event["payload"].update(payload)
    event.update(envelope or {})
    return event


# (what, event, a word the reason must name) -- the values the issue lists first, then their neighbours
REFUSED = [
    ("amount 1e400", _bad("OrderCreated", amount="1e400"), "amount"),
    ("amount 1e30", _bad("OrderCreated", amount=1e30), "amount"),
    ("amount NaN", _bad("OrderCreated", amount="NaN"), "amount"),
    ("amount over the bound", _bad("OrderCreated", amount=str(MAX_MONEY + 1)), "amount"),
    ("order date in year 0001", _bad("OrderCreated", order_date="0001-01-01T00:00:00Z"), "order_date"),
    ("order date in year 9999", _bad("OrderCreated", order_date="9999-12-31T00:00:00Z"), "order_date"),
    ("order date two years ahead", _bad("OrderCreated", order_date=(NOW + dt.timedelta(days=730)).isoformat()), "order_date"),
    ("occurred_at in 9999", _bad("OrderShipped", envelope={"occurred_at": "9999-01-01T00:00:00Z"}), "occurred_at"),
    ("version 1.5", _bad("OrderShipped", envelope={"version": 1.5}), "version"),
    ("version as a string", _bad("OrderShipped", envelope={"version": "1"}), "version"),
    ("version 3 (unknown)", _bad("OrderShipped", envelope={"version": 3}), "version"),
    ("NUL in order_id", _bad("OrderShipped", order_id="O-\x00-1"), "order_id"),
    ("control character in customer_id", _bad("OrderShipped", customer_id="C\x1b1"), "customer_id"),
    ("NUL in a free-text reason", _bad("OrderCancelled", cancelled_at=NOW.isoformat(), reason="late\x00"), "reason"),
    ("date-time without an offset", _bad("OrderCreated", order_date="2026-11-20T09:00:00"), "offset"),
    ("currency other than CNY", _bad("OrderCreated", currency="USD"), "currency"),
    ("days_overdue 2^63", _bad("PaymentOverdue", days_overdue=2**63), "days_overdue"),
    ("days_overdue over the bound", _bad("PaymentOverdue", days_overdue=MAX_DAYS_OVERDUE + 1), "days_overdue"),
    ("due date in year 0001", _bad("PaymentReceived", due_date="0001-01-01"), "due_date"),
    ("delay of 2^40 minutes", _bad("ShipmentDelayed", delay_minutes=2**40), "delay_minutes"),
    # the service-level fields of issue 20 (second versions and new types) use the same bounds
    ("negative quantity ordered", _bad("OrderCreated", envelope={"version": 2}, quantity_ordered=-1), "quantity_ordered"),
    ("fractional quantity shipped", _bad("OrderShipped", envelope={"version": 2}, quantity_shipped=1.5), "quantity_shipped"),
    ("quantity over the bound", _bad("OrderShipped", envelope={"version": 2}, quantity_shipped=MAX_QUANTITY + 1), "quantity_shipped"),
    (
        "promised pickup without an offset",
        _bad("OrderCreated", envelope={"version": 2}, promised_pickup_at="2026-11-20T09:00:00"),
        "offset",
    ),
    ("urgent is not a flag", _bad("OrderCreated", envelope={"version": 2}, urgent="very"), "urgent"),
    ("proof of delivery returned in 9999", _bad("ProofOfDeliveryReturned", returned_at="9999-01-01T00:00:00Z"), "returned_at"),
    ("correction without its number", _bad("InvoiceCorrected", correction_id=None), "correction_id"),
    ("correction of NaN", _bad("InvoiceCorrected", previous_amount="NaN"), "previous_amount"),
]

ACCEPTED = [
    new_event("OrderCreated", "C-BOUNDS", amount=str(MAX_MONEY), currency="cny", order_date="2026-11-20T17:00:00+08:00"),
    new_event("OrderCreated", "C-BOUNDS", amount=12.345, order_date="2000-01-01T00:00:00Z"),  # rounded to cents
    new_event("PaymentOverdue", "C-BOUNDS", days_overdue=MAX_DAYS_OVERDUE),
    new_event("ShipmentDelayed", "C-BOUNDS", delay_minutes=3000, reason="台风 (typhoon)\nroad closed"),
    new_event(
        "OrderCreated", "C-BOUNDS", version=2, quantity_ordered=MAX_QUANTITY, urgent=True, promised_pickup_at="2026-11-20T12:00:00+08:00"
    ),
    new_event("OrderShipped", "C-BOUNDS", version=2, quantity_shipped=0),
    new_event("OrderDelivered", "C-BOUNDS", version=2, pod_due_at="2026-11-25T00:00:00Z"),
    new_event("ProofOfDeliveryReturned", "C-BOUNDS"),
    new_event("InvoiceCorrected", "C-BOUNDS", reason="weight re-measured"),
]


async def test_issue_16_values_are_refused_at_the_edge_and_the_rest_is_applied(database_factory, db_kind):
    downstream = await build_downstream(database_factory, db_kind)
    try:
        batch = ACCEPTED[:2] + [event for _, event, _ in REFUSED] + ACCEPTED[2:]
        response = await downstream.post(batch)
        assert response.status_code == 207
        body = response.json()
        results = body["results"]
        assert (body["accepted"], body["rejected"]) == (len(ACCEPTED), len(REFUSED))
        for (what, event, word), result in zip(REFUSED, results[2:-2]):
            assert result["status"] == "rejected", what
            assert result["event_id"] == event["event_id"], what
            assert word in result["reason"], (what, result["reason"])
        accepted_ids = {r["event_id"] for r in results if r["status"] == "accepted"}
        assert accepted_ids == {e["event_id"] for e in ACCEPTED}
        assert await downstream.outbox_count() == len(ACCEPTED)

        assert downstream.dead_letters() == []
        for name, consumer in downstream.consumers.items():
            outcomes = await consumer.outcomes()
            wanted = {r["event_id"] for r, e in zip(results, batch) if r["status"] == "accepted" and consumer.wants(r["topic"], e["type"])}
            assert {eid: outcomes.get(eid) for eid in wanted} == {eid: "applied" for eid in wanted}, name
            assert not set(outcomes) - accepted_ids, name
    finally:
        await downstream.close()


async def test_the_reasons_say_what_to_fix(database_factory):
    downstream = await build_downstream(database_factory)
    try:
        naive = _bad("OrderCreated", order_date="2026-11-20T09:00:00")
        far = _bad("OrderCreated", order_date="9999-12-31T00:00:00Z")
        usd = _bad("OrderCreated", currency="USD")
        half = _bad("OrderShipped", envelope={"version": 1.5})
        nul = _bad("OrderShipped", order_id="O-\x00-1")
        reasons = [r["reason"] for r in (await downstream.post([naive, far, usd, half, nul])).json()["results"]]
        assert "needs an offset" in reasons[0]
        assert "between 2000-01-01 and" in reasons[1]
        assert "currency USD is not accepted here; accepted: CNY" in reasons[2]
        assert reasons[3] == "version must be an integer; got 1.5"
        assert reasons[4] == "payload invalid: order_id: must not contain control characters (U+0000-U+001F, U+007F-U+009F)"
    finally:
        await downstream.close()


async def test_a_type_that_is_not_a_string_is_refused_and_not_echoed(database_factory):
    downstream = await build_downstream(database_factory)
    try:
        event = _bad("PaymentReceived")
        event["type"] = []  # schemathesis found the answer echoing it, against the answer's own schema (type: string)
        result = (await downstream.post([event])).json()["results"][0]
        assert result["status"] == "rejected" and result["type"] is None
        assert result["reason"].startswith("type must be one of")
    finally:
        await downstream.close()


async def test_the_openapi_document_shows_the_request_schema_and_its_bounds(database_factory):
    downstream = await build_downstream(database_factory)
    try:
        response = await downstream.client.get("/api/v1/openapi.json", headers=role_headers(downstream.settings, "admin"))
        assert response.status_code == 200
        document = response.json()
        body = document["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert {"$ref": "#/components/schemas/IngestEvent"} in body["anyOf"]
        schemas = document["components"]["schemas"]
        assert len(schemas["IngestEvent"]["oneOf"]) == 14  # 9 types in v1, 3 of them in v2 (issue 20), 2 new types
        order_v2 = schemas["IngestOrderCreatedV2"]
        assert order_v2["properties"]["version"]["const"] == 2 and "version" in order_v2["required"]
        assert order_v2["properties"]["payload"]["properties"]["quantity_ordered"]["anyOf"][0]["maximum"] == MAX_QUANTITY
        order = schemas["IngestOrderCreated"]["properties"]
        amount = order["payload"]["properties"]["amount"]
        assert {"minimum": 0.0, "maximum": float(MAX_MONEY), "type": "number"} in amount["anyOf"] and amount["x-decimal-places"] == 2
        assert order["payload"]["properties"]["order_date"]["x-earliest"] == "2000-01-01"
        assert "offset" in order["occurred_at"]["description"]
        assert order["payload"]["properties"]["order_id"]["pattern"].startswith("^[^\\x00")
        assert order["payload"]["properties"]["currency"]["maxLength"] == 3
        overdue = schemas["IngestPaymentOverdue"]["properties"]["payload"]["properties"]["days_overdue"]
        assert overdue["maximum"] == MAX_DAYS_OVERDUE
    finally:
        await downstream.close()
