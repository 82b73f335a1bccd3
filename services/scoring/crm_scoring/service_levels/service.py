"""Service-level records: loaded from the fact tables, computed by `measures`, stored per customer and month.

Kept fresh two ways: the event handler recomputes the trailing `TRAILING_MONTHS` of the customers a batch
touched (`refresh_customers`), and `compute_month` recomputes one month for the whole base
(`POST /admin/service-levels/compute`, run by an operator or a cron job to close a month; also what corrects a
month older than the trailing window).
Both mark the customers for rescoring (the handler through the batch, `compute_month` itself): the rescoring judges
the last closed month against the customer's agreed targets (`judgement`), so the judgement always reads the
records stored here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_scoring.scoring.ingest import day_number, id_filters, mark_dirty
from crm_scoring.scoring.models import complaints, invoice_corrections, orders
from crm_scoring.service_levels.measures import monthly_records
from crm_scoring.service_levels.models import MEASURE_COLUMNS, service_level_breaches, service_level_months
from crm_scoring.settings import ScoringSettings

TRAILING_MONTHS = 12
CHUNK = 2000  # customers loaded and computed at a time when a whole month is recomputed

ORDER_FIELDS = (
    "customer_id",
    "order_date",
    "cancelled_at",
    "shipped_at",
    "delivered_at",
    "promised_pickup_at",
    "promised_at",
    "promised_delivery_at",
    "damaged",
    "lost",
    "urgent",
    "quantity_ordered",
    "quantity_shipped",
    "pod_due_at",
    "pod_return_due_at",
    "pod_returned_at",
)


class InvalidMonth(ValueError):
    """A month that is not YYYY-MM."""


def parse_month(text: str) -> dt.date:
    try:
        first = dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise InvalidMonth(f"a month is YYYY-MM, got {text!r}") from None
    return first


def add_months(first: dt.date, count: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def month_window(last: dt.date, count: int) -> list[str]:
    """The `count` months ending with the month of `last`, oldest first, as YYYY-MM."""
    end = last.replace(day=1)
    return [add_months(end, offset).strftime("%Y-%m") for offset in range(-count + 1, 1)]


def _bounds(months: Sequence[str]) -> tuple[dt.datetime, dt.datetime]:
    start = parse_month(min(months))
    end = add_months(parse_month(max(months)), 1)
    utc = dt.UTC
    return dt.datetime.combine(start, dt.time(), utc), dt.datetime.combine(end, dt.time(), utc)


async def _load(session: AsyncSession, start: dt.datetime, end: dt.datetime, customer_ids: list[str]):
    order_stmt = select(*(orders.c[name] for name in ORDER_FIELDS)).where(
        orders.c.order_day >= day_number(start), orders.c.order_day < day_number(end)
    )
    complaint_stmt = select(complaints.c.customer_id, complaints.c.filed_at, complaints.c.resolved_at).where(
        complaints.c.filed_at >= start, complaints.c.filed_at < end
    )
    correction_stmt = select(invoice_corrections.c.customer_id, invoice_corrections.c.corrected_at).where(
        invoice_corrections.c.corrected_at >= start, invoice_corrections.c.corrected_at < end
    )
    loaded = []
    for stmt, column in (
        (order_stmt, orders.c.customer_id),
        (complaint_stmt, complaints.c.customer_id),
        (correction_stmt, invoice_corrections.c.customer_id),
    ):
        rows: list[dict] = []
        for where in id_filters(session, column, customer_ids):
            rows.extend(dict(r) for r in (await session.execute(stmt.where(where))).mappings())
        loaded.append(rows)
    return loaded


async def _insert(session: AsyncSession, records: dict[tuple[str, str], dict], now: dt.datetime) -> int:
    rows = [{"customer_id": customer_id, "month": month, "computed_at": now, **record} for (customer_id, month), record in records.items()]
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(service_level_months), rows[start : start + CHUNK])
    return len(rows)


async def refresh_customers(session: AsyncSession, customer_ids: set[str], now: dt.datetime) -> int:
    """Recompute the trailing months (up to the month of `now`) of these customers."""
    if not customer_ids:
        return 0
    ids = sorted(customer_ids)
    months = month_window(now.date(), TRAILING_MONTHS)
    start, end = _bounds(months)
    order_rows, complaint_rows, correction_rows = await _load(session, start, end, ids)
    records = monthly_records(order_rows, complaint_rows, correction_rows, now, set(months))
    for where in id_filters(session, service_level_months.c.customer_id, ids):
        await session.execute(delete(service_level_months).where(and_(where, service_level_months.c.month.in_(months))))
    return await _insert(session, records, now)


async def _customers_of_month(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[str]:
    ids: set[str] = set()
    ids.update(
        (
            await session.execute(
                select(orders.c.customer_id).where(orders.c.order_day >= day_number(start), orders.c.order_day < day_number(end)).distinct()
            )
        ).scalars()
    )
    ids.update(
        (
            await session.execute(
                select(complaints.c.customer_id).where(complaints.c.filed_at >= start, complaints.c.filed_at < end).distinct()
            )
        ).scalars()
    )
    ids.update(
        (
            await session.execute(
                select(invoice_corrections.c.customer_id)
                .where(invoice_corrections.c.corrected_at >= start, invoice_corrections.c.corrected_at < end)
                .distinct()
            )
        ).scalars()
    )
    return sorted(ids)


async def compute_month(session: AsyncSession, month: str, now: dt.datetime, settings: ScoringSettings) -> int:
    """Recompute one month for the whole base, CHUNK customers at a time, and mark its customers for rescoring.
    Returns the records stored. (`settings` is unused since the rescoring judges; kept for the callers.)"""
    months = [parse_month(month).strftime("%Y-%m")]
    start, end = _bounds(months)
    await session.execute(delete(service_level_months).where(service_level_months.c.month == months[0]))
    stored = 0
    customer_ids = await _customers_of_month(session, start, end)
    for offset in range(0, len(customer_ids), CHUNK):
        chunk = customer_ids[offset : offset + CHUNK]
        order_rows, complaint_rows, correction_rows = await _load(session, start, end, chunk)
        records = monthly_records(order_rows, complaint_rows, correction_rows, now, set(months))
        stored += await _insert(session, records, now)
    # their satisfaction reads the month, and the rescoring judges it when it is the last closed one (a customer judged
    # before whose month is now empty included: its breach is cleared there)
    judged = select(service_level_breaches.c.customer_id).where(service_level_breaches.c.month == months[0])
    await mark_dirty(session, set(customer_ids) | set((await session.execute(judged)).scalars()), now)
    return stored


def empty_record(customer_id: str, month: str) -> dict:
    record = {name: None for name in MEASURE_COLUMNS}
    record.update(customer_id=customer_id, month=month, orders=0, urgent_orders=0, billing_corrections=0, complaints=0, computed_at=None)
    return record


async def trend(session: AsyncSession, customer_id: str, last_month: dt.date, months: int) -> list[dict]:
    """Every month of the window, oldest first; a month without a record is an empty one (no orders)."""
    window = month_window(last_month, months)
    stored = {
        row["month"]: dict(row)
        for row in (
            await session.execute(
                select(service_level_months).where(
                    service_level_months.c.customer_id == customer_id, service_level_months.c.month.in_(window)
                )
            )
        ).mappings()
    }
    return [stored.get(month) or empty_record(customer_id, month) for month in window]
