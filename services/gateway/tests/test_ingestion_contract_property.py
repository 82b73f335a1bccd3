"""Property: what the gateway accepts, its consumers apply; what it refuses carries a reason and changes nothing.

Hypothesis generates batches of logistics events: valid ones anywhere inside the documented bounds, and
valid ones with one field broken (out of bounds, non-finite, naive, foreign currency, control characters,
a non-integer version...). Each batch goes through `POST /api/v1/events`; the gateway's outbox rows are fed
to the real consumers (scoring, complaints, notifications, the gateway read model; see ingest_downstream)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("crm_scoring", reason="scoring service not installed")

from sqlalchemy import select  # noqa: E402

from crm_common.events import registered_events, topic_for  # noqa: E402
from crm_common.events.bounds import EARLIEST, FACT_HORIZON, MAX_DAYS_OVERDUE, MAX_DELAY_MINUTES, MAX_MONEY, MAX_QUANTITY  # noqa: E402
from crm_common.events.logistics import LOGISTICS_EVENT_TYPES  # noqa: E402
from crm_gateway.ingestion.models import ingested_events  # noqa: E402
from ingest_downstream import build_downstream  # noqa: E402

UTC = dt.UTC
TODAY = dt.datetime.now(UTC).date()
ZONES = [UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))]

# the first and last instants whose UTC date is inside the window, shown in any offset
moments = st.builds(
    lambda at, zone: at.replace(tzinfo=UTC).astimezone(zone).isoformat(),
    st.datetimes(
        min_value=dt.datetime.combine(EARLIEST, dt.time()),
        max_value=dt.datetime.combine(TODAY + FACT_HORIZON - dt.timedelta(days=1), dt.time(23, 59)),
    ),
    st.sampled_from(ZONES),
)
days = st.dates(min_value=EARLIEST, max_value=TODAY + FACT_HORIZON - dt.timedelta(days=1)).map(dt.date.isoformat)
money = st.one_of(
    st.decimals(min_value=0, max_value=MAX_MONEY, places=2).map(str),
    st.decimals(min_value=0, max_value=Decimal("99999.99"), places=4).map(str),  # sub-cent digits are rounded
    st.integers(min_value=0, max_value=10**9 - 1),
    st.sampled_from(["0", "0.00", str(MAX_MONEY), "1E+3"]),
)
ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=30)
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00", exclude_categories=("Cs",)), max_size=50)


def _unique(prefix: str):
    return st.builds(lambda tail: f"{prefix}-{uuid.uuid4().hex[:10]}-{tail}", ids)


quantities = st.integers(0, MAX_QUANTITY)

# what the second versions add (issue 20)
V2_FIELDS = {
    "OrderCreated": {"promised_pickup_at": st.none() | moments, "quantity_ordered": st.none() | quantities, "urgent": st.booleans()},
    "OrderShipped": {"quantity_shipped": st.none() | quantities},
    "OrderDelivered": {"pod_due_at": st.none() | moments},
}


def _payload_of(event_type: str, version: int = 1):
    order = {"order_id": _unique("O"), "customer_id": ids, "tracking_number": st.none() | ids}
    fields = {
        "OrderCreated": {
            "order_date": moments,
            "amount": money,
            "currency": st.sampled_from(["CNY", "cny"]),
            "cost": st.none() | money,
            "lane": st.none() | texts,
            "promised_delivery_at": st.none() | moments,
        },
        "OrderShipped": {"shipped_at": moments},
        "OrderDelivered": {"delivered_at": moments, "promised_at": st.none() | moments},
        "OrderCancelled": {"cancelled_at": moments, "reason": st.none() | texts},
        "ShipmentDelayed": {"delay_minutes": st.integers(0, MAX_DELAY_MINUTES), "reported_at": moments, "reason": st.none() | texts},
        "ShipmentDamaged": {"reported_at": moments, "estimated_loss": st.none() | money, "description": st.none() | texts},
        "ShipmentLost": {"reported_at": moments, "declared_value": st.none() | money},
        "PaymentReceived": {"paid_at": moments},
        "PaymentOverdue": {"days_overdue": st.integers(0, MAX_DAYS_OVERDUE), "reported_at": moments},
        "ProofOfDeliveryReturned": {"returned_at": moments, "due_at": st.none() | moments},
        "InvoiceCorrected": {
            "correction_id": _unique("CN"),
            "previous_amount": money,
            "currency": st.sampled_from(["CNY", "cny"]),
            "reason": st.none() | texts,
            "corrected_at": moments,
        },
    }[event_type]
    if event_type.startswith("Payment"):
        base = {"invoice_id": _unique("INV"), "customer_id": ids, "amount": money, "due_date": days}
    elif event_type == "InvoiceCorrected":
        base = {"invoice_id": _unique("INV"), "customer_id": ids, "amount": money}
    else:
        base = order
    return st.fixed_dictionaries(base | fields | (V2_FIELDS[event_type] if version == 2 else {}))


TYPES_AND_VERSIONS = sorted((t, v) for t, v in registered_events() if t in LOGISTICS_EVENT_TYPES)


@st.composite
def valid_events(draw):
    event_type, version = draw(st.sampled_from(TYPES_AND_VERSIONS))
    event = {"event_id": str(uuid.uuid4()), "type": event_type, "payload": draw(_payload_of(event_type, version))}
    if version != 1 or draw(st.booleans()):
        event["version"] = version
    if draw(st.booleans()):
        event["occurred_at"] = draw(moments)
    return event


# the date-time every event of the type carries
WHEN = {
    "OrderCreated": "order_date",
    "OrderShipped": "shipped_at",
    "OrderDelivered": "delivered_at",
    "OrderCancelled": "cancelled_at",
    "ShipmentDelayed": "reported_at",
    "ShipmentDamaged": "reported_at",
    "ShipmentLost": "reported_at",
    "PaymentReceived": "paid_at",
    "PaymentOverdue": "reported_at",
    "ProofOfDeliveryReturned": "returned_at",
    "InvoiceCorrected": "corrected_at",
}


BAD_NUMBERS = st.sampled_from(["1e400", 1e30, "NaN", "Infinity", "-1", -0.01, str(MAX_MONEY + Decimal("0.01")), True])
BAD_MOMENTS = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1999-12-31T23:59:59Z",
        "2026-11-20T09:00:00",
        (TODAY + dt.timedelta(days=800)).isoformat() + "T00:00:00Z",
        "not a date",
    ]
)
BAD_IDS = st.sampled_from(["", "O-\x00", "a\x1fb", "tab\tid", "x" * 101, "\x7f", "\x85"])


@st.composite
def broken_events(draw):
    """A valid event with exactly one field made invalid, and what the refusal must name."""
    event = draw(valid_events())
    payload = event["payload"]
    money_field = next((k for k in ("amount", "cost", "estimated_loss", "declared_value", "previous_amount") if k in payload), None)
    choices = ["moment", "id", "occurred_at", "version"] + (["money"] if money_field else [])
    if event["type"] in ("OrderCreated", "PaymentReceived", "PaymentOverdue", "InvoiceCorrected"):
        choices.append("currency")
    count_field = next((k for k in ("days_overdue", "delay_minutes", "quantity_ordered", "quantity_shipped") if k in payload), None)
    if count_field:
        choices.append("count")
    kind = draw(st.sampled_from(choices))
    if kind == "money":
        payload[money_field] = draw(BAD_NUMBERS)
        return event, money_field
    if kind == "moment":
        field = WHEN[event["type"]]
        payload[field] = draw(BAD_MOMENTS)
        return event, field
    if kind == "id":
        field = draw(st.sampled_from(["customer_id", "invoice_id" if "invoice_id" in payload else "order_id"]))
        payload[field] = draw(BAD_IDS)
        return event, field
    if kind == "occurred_at":
        event["occurred_at"] = draw(BAD_MOMENTS.filter(lambda m: m != "not a date"))
        return event, "occurred_at"
    if kind == "version":
        event["version"] = draw(st.sampled_from([1.5, "1", True, 0, 99, None, 2**63]))
        return event, "version"
    if kind == "currency":
        payload["currency"] = draw(st.sampled_from(["USD", "EUR", "C\x00Y", "CN", "RMB"]))
        return event, "currency"
    most = {"days_overdue": MAX_DAYS_OVERDUE, "delay_minutes": MAX_DELAY_MINUTES}.get(count_field, MAX_QUANTITY)
    payload[count_field] = draw(st.sampled_from([-1, 2**63, 2**31, 1.5, "many", most + 1]))
    return event, count_field


batches = st.lists(st.one_of(valid_events().map(lambda e: (e, None)), broken_events()), min_size=1, max_size=8)


def test_accepted_events_are_applied_and_refused_ones_carry_a_reason(database_factory):
    # SQLite only, to stay quick; test_ingestion_bounds runs the cases through the same consumers on both databases
    loop = asyncio.new_event_loop()
    downstream = loop.run_until_complete(build_downstream(database_factory))

    async def check(batch):
        events = [event for event, _ in batch]
        outbox_before = await downstream.outbox_count()
        response = await downstream.post(events)
        assert response.status_code in (200, 207), response.text
        results = response.json()["results"]
        assert len(results) == len(batch)
        for (event, broken_field), result in zip(batch, results):
            if broken_field is None:
                assert result["status"] == "accepted", (event, result)
            else:
                assert result["status"] == "rejected", (broken_field, event, result)
                assert broken_field in result["reason"], (broken_field, result["reason"])
        accepted = {r["event_id"]: e for r, (e, _) in zip(results, batch) if r["status"] == "accepted"}
        refused = {e["event_id"] for r, (e, _) in zip(results, batch) if r["status"] == "rejected"}
        assert response.status_code == (207 if refused else 200)
        # nothing else changes: only the accepted events reached the outbox and the seen ids
        assert await downstream.outbox_count() == outbox_before + len(accepted)
        async with downstream.gateway_db.sessions() as session:
            seen = set(
                (
                    await session.execute(
                        select(ingested_events.c.event_id).where(ingested_events.c.event_id.in_(list(accepted) + list(refused)))
                    )
                ).scalars()
            )
        assert seen == set(accepted)
        # every accepted event is applied by each consumer that reads it; nothing is dead-lettered
        assert downstream.dead_letters() == []
        for name, consumer in downstream.consumers.items():
            outcomes = await consumer.outcomes()
            for event_id, event in accepted.items():
                topic = topic_for(event["type"])
                if consumer.wants(topic, event["type"]):
                    assert outcomes.get(event_id) == "applied", (name, event)
            assert not refused & set(outcomes), name

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batch=batches)
    def prop(batch):
        loop.run_until_complete(check(batch))

    try:
        prop()
    finally:
        loop.run_until_complete(downstream.close())
        loop.close()
