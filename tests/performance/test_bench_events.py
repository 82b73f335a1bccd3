"""The TMS events the ingestion benchmarks post are all ones the gateway accepts: none is stamped in the future,
however long the run (a refused event would make a sustained rate look unsustained)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_a_long_run_stamps_no_event_in_the_future():
    sys.path.insert(0, str(BENCH))
    try:
        import perfkit
    finally:
        sys.path.remove(str(BENCH))
    items = perfkit.tms_items(60_000, 5_000, seed=11)
    now = dt.datetime.now(dt.UTC)
    future = [item for item in items if dt.datetime.fromisoformat(item["occurred_at"]) > now]
    assert len(items) == 60_000 and future == []
    per_order = {}
    for item in items:  # each order still goes created -> shipped -> delivered -> paid, in time order
        order_id = item["payload"].get("order_id") or item["payload"]["invoice_id"].removeprefix("INV-")
        per_order.setdefault(order_id, []).append((item["type"], item["occurred_at"]))
    for steps in per_order.values():
        kinds = [kind for kind, _ in steps]
        assert kinds == ["OrderCreated", "OrderShipped", "OrderDelivered", "PaymentReceived"][: len(kinds)]
        assert [at for _, at in steps] == sorted(at for _, at in steps)
