"""The gateway's read models: shipments folded per order across batches and out of order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from crm_common.events.logistics import OrderCreated, OrderDelivered, OrderShipped
from crm_gateway.dashboard.service import recent_shipments
from gateway_support import feed_read_models, shipment_events

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


async def _rows(runtime, customer_id):
    async with runtime.db.sessions() as session:
        return await recent_shipments(session, customer_id)


async def test_one_event_per_batch_gives_the_same_rows_as_one_batch(make_gateway):
    _, _, app = await make_gateway()
    runtime = app.state.runtime
    events = shipment_events("C7", now=NOW)
    for event in events:  # each event its own batch: the UPDATE path
        await feed_read_models(runtime, [event])
    await feed_read_models(runtime, shipment_events("C8", now=NOW))  # all at once: the INSERT path
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("order_id", "customer_id", "tracking_number")} for r in rows]  # noqa: E731
    c7, c8 = await _rows(runtime, "C7"), await _rows(runtime, "C8")
    assert strip(c7) == strip(c8) and len(c7) == 3
    assert [(r["status"], r["on_time"]) for r in c7] == [("delayed", None), ("delivered", False), ("delivered", True)]


async def test_events_arriving_out_of_order_never_move_the_status_back(make_gateway):
    _, _, app = await make_gateway()
    runtime = app.state.runtime
    promised = NOW + dt.timedelta(days=2)
    await feed_read_models(runtime, [OrderDelivered(order_id="X", customer_id="C9", delivered_at=NOW + dt.timedelta(days=1))])
    await feed_read_models(runtime, [OrderShipped(order_id="X", customer_id="C9", shipped_at=NOW, tracking_number="SF9")])
    await feed_read_models(
        runtime, [OrderCreated(order_id="X", customer_id="C9", order_date=NOW, amount=Decimal("10.50"), promised_delivery_at=promised)]
    )
    [row] = await _rows(runtime, "C9")
    assert (row["status"], row["on_time"], row["amount"], row["tracking_number"]) == ("delivered", True, "10.50", "SF9")
