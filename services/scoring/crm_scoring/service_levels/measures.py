"""The service-level measures of one customer and month, from fact rows: pure, no database.

An order belongs to the month (UTC) of its order date and counts unless cancelled. A promise that is past
with nothing done counts as missed, a promise still ahead is not judged yet. Percentages are 0-100 and None
when nothing could be measured (no promise, no quantity...): "unknown" is not "perfect"."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field


def month_of(moment: dt.datetime) -> str:
    utc = moment.astimezone(dt.UTC)
    # strftime("%Y-%m")'s text; called for every order a consumer batch's service-level refresh reads, where strftime
    # was 9% of the consumer's samples (services/scoring/bench/month_of_ab.py)
    return f"{utc.year}-{utc.month:02d}"


def _pct(hits: int, out_of: int) -> float | None:
    return None if out_of == 0 else round(100.0 * hits / out_of, 4)


class _Ratio:
    __slots__ = ("hits", "out_of")

    def __init__(self) -> None:
        self.hits = 0
        self.out_of = 0

    def add(self, hit: bool) -> None:
        self.out_of += 1
        self.hits += hit

    def pct(self) -> float | None:
        return _pct(self.hits, self.out_of)


def _kept(promise: dt.datetime | None, done: dt.datetime | None, now: dt.datetime) -> bool | None:
    """True/False when the promise can be judged: done by it, or past it and not done; None otherwise."""
    if promise is None or (done is None and promise >= now):
        return None
    return done is not None and done <= promise


@dataclass
class _Month:
    orders: int = 0
    delivered: int = 0
    damaged: int = 0
    lost: int = 0
    quantity_ordered: int = 0
    quantity_filled: int = 0
    pickup: _Ratio = field(default_factory=_Ratio)
    delivery: _Ratio = field(default_factory=_Ratio)
    urgent: _Ratio = field(default_factory=_Ratio)
    documents: _Ratio = field(default_factory=_Ratio)
    corrections: int = 0
    complaints: int = 0
    resolution_hours: list[float] = field(default_factory=list)

    def add_order(self, order: dict, now: dt.datetime) -> None:
        self.orders += 1
        delivered_at = order.get("delivered_at")
        self.delivered += delivered_at is not None
        self.damaged += bool(order.get("damaged"))
        self.lost += bool(order.get("lost"))
        for ratio, promise, done in (
            (self.pickup, order.get("promised_pickup_at"), order.get("shipped_at")),
            (self.delivery, order.get("promised_at") or order.get("promised_delivery_at"), delivered_at),
            (self.documents, order.get("pod_return_due_at") or order.get("pod_due_at"), order.get("pod_returned_at")),
        ):
            kept = _kept(promise, done, now)
            if kept is not None:
                ratio.add(kept)
        if order.get("urgent"):
            on_time = _kept(order.get("promised_at") or order.get("promised_delivery_at"), delivered_at, now)
            self.urgent.add(delivered_at is not None if on_time is None else on_time)
        ordered, shipped = order.get("quantity_ordered"), order.get("quantity_shipped")
        if ordered and shipped is not None:
            self.quantity_ordered += ordered
            self.quantity_filled += min(ordered, shipped)  # over-shipping does not make up for a short order

    def record(self) -> dict:
        mean_hours = sum(self.resolution_hours) / len(self.resolution_hours) if self.resolution_hours else None
        return {
            "orders": self.orders,
            "on_time_pickup_pct": self.pickup.pct(),
            "on_time_delivery_pct": self.delivery.pct(),
            "order_completion_pct": _pct(self.delivered, self.orders),
            "damage_rate_pct": _pct(self.damaged, self.orders),
            "loss_rate_pct": _pct(self.lost, self.orders),
            "fill_rate_pct": _pct(self.quantity_filled, self.quantity_ordered),
            "urgent_orders": self.urgent.out_of,
            "urgent_completion_pct": self.urgent.pct(),
            "documents_on_time_pct": self.documents.pct(),
            "billing_corrections": self.corrections,
            "complaints": self.complaints,
            "complaints_per_100_orders": _pct(self.complaints, self.orders),
            "mean_resolution_hours": None if mean_hours is None else round(mean_hours, 4),
        }


def monthly_records(
    orders: Iterable[dict], complaints: Iterable[dict], corrections: Iterable[dict], now: dt.datetime, months: set[str] | None = None
) -> dict[tuple[str, str], dict]:
    """{(customer_id, "YYYY-MM"): record} for every customer-month with an order, a complaint or a correction
    (only the given months when `months` is set)."""
    cells: dict[tuple[str, str], _Month] = defaultdict(_Month)

    def cell(customer_id: str, moment: dt.datetime | None) -> _Month | None:
        if moment is None:
            return None
        month = month_of(moment)
        return None if months is not None and month not in months else cells[(customer_id, month)]

    for order in orders:
        if order.get("cancelled_at") is None and (target := cell(order["customer_id"], order.get("order_date"))) is not None:
            target.add_order(order, now)
    for complaint in complaints:
        if (target := cell(complaint["customer_id"], complaint.get("filed_at"))) is not None:
            target.complaints += 1
            if complaint.get("resolved_at") is not None:
                target.resolution_hours.append((complaint["resolved_at"] - complaint["filed_at"]).total_seconds() / 3600)
    for correction in corrections:
        if (target := cell(correction["customer_id"], correction.get("corrected_at"))) is not None:
            target.corrections += 1
    return {key: month.record() for key, month in cells.items()}
