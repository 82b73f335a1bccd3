"""Events -> fact rows. Every fact is keyed by its business id and merged commutatively, so the result of
a set of events does not depend on the order (or the number of times) they arrive."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy import String, any_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import utcnow
from crm_common.events.complaints import ComplaintFiled, ComplaintResolved, SurveyAnswered
from crm_common.events.customers import CustomerErased, CustomerMerged, CustomerRegistered, CustomerUpdated, SatisfactionSurveyAnswered
from crm_common.events.envelope import EventEnvelope, EventPayload
from crm_common.events.logistics import (
    InvoiceCorrected,
    OrderCancelled,
    OrderCreated,
    OrderCreatedV2,
    OrderDelivered,
    OrderDeliveredV2,
    OrderShipped,
    OrderShippedV2,
    PaymentOverdue,
    PaymentReceived,
    ProofOfDeliveryReturned,
    ShipmentDamaged,
    ShipmentDelayed,
    ShipmentLost,
)
from crm_scoring.scoring.models import (
    FACT_TABLES,
    complaints,
    customer_aliases,
    customer_scores,
    customers,
    erased_customers,
    invoice_corrections,
    invoices,
    orders,
    rescore_queue,
    score_history,
    surveys,
)
from crm_scoring.scoring.upsert import insert_ignore, merge_rows, upsert
from crm_scoring.service_levels.models import service_level_breaches, service_level_months

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

ORDER_RULES = {
    "customer_id": "set",
    "order_date": "set",
    "order_day": "set",
    "amount": "set",
    "currency": "set",
    "cost": "set",
    "margin": "set",
    "service_type": "set",
    "lane": "set",
    "promised_delivery_at": "set",
    "promised_at": "set",
    "shipped_at": "min",
    "delivered_at": "min",
    "cancelled_at": "min",
    "delay_minutes": "max",
    "damaged": "max",
    "damage_loss": "max",
    "lost": "max",
    "lost_value": "max",
    "promised_pickup_at": "set",
    "quantity_ordered": "set",
    "quantity_shipped": "max",
    "urgent": "max",
    "pod_due_at": "set",
    "pod_return_due_at": "set",
    "pod_returned_at": "min",
}
ORDER_COLUMNS = list(ORDER_RULES)
INVOICE_RULES = {
    "customer_id": "set",
    "amount": "set",
    "currency": "set",
    "due_day": "set",
    "paid_at": "min",
    "paid_day": "min",
    "days_overdue": "max",
}
CORRECTION_RULES = {"customer_id": "set", "invoice_id": "set", "previous_amount": "set", "amount": "set", "corrected_at": "set"}
COMPLAINT_RULES = {
    "customer_id": "set",
    "priority": "set",
    "category": "set",
    "filed_at": "set",
    "resolved_at": "min",
    "within_sla": "min",
    "outcome": "set",
    "compensation": "max",
}
SURVEY_RULES = {"customer_id": "set", "score": "set", "answered_at": "set"}
SATISFACTION_SURVEY_KEY = "satisfaction:"  # the surveys table's key of a SatisfactionSurveyAnswered (not a complaint id)

SOURCE_EVENT_TYPES = frozenset(
    {
        "OrderCreated",
        "OrderShipped",
        "OrderDelivered",
        "OrderCancelled",
        "ShipmentDelayed",
        "ShipmentDamaged",
        "ShipmentLost",
        "ProofOfDeliveryReturned",
        "PaymentReceived",
        "PaymentOverdue",
        "InvoiceCorrected",
        "ComplaintFiled",
        "ComplaintResolved",
        "SurveyAnswered",
        "SatisfactionSurveyAnswered",
        "CustomerRegistered",
        "CustomerUpdated",
        "CustomerMerged",
        "CustomerErased",
    }
)


def day_number(value: dt.datetime | dt.date | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int((value - EPOCH).total_seconds() // 86400)
    return (value - EPOCH.date()).days


def _f(value) -> float | None:
    return None if value is None else float(value)


def _text(value: str | None, size: int = 100) -> str | None:
    return None if value is None else value[:size]


# Fact rows carry only the columns their event knows: the upsert fills the others with NULL, which every merge
# rule treats as "unknown" (the stored value stays), so a sparse row merges exactly like a row of NULLs.
def _order_row(p: EventPayload, customer_id: str) -> dict:
    row = {"order_id": p.order_id, "customer_id": customer_id}
    if isinstance(p, OrderCreated):
        row.update(
            order_date=p.order_date,
            order_day=day_number(p.order_date),
            amount=_f(p.amount),
            currency=p.currency,
            cost=_f(p.cost),
            margin=_f(p.margin),
            service_type=p.service_type,
            lane=p.lane,
            promised_delivery_at=p.promised_delivery_at,
        )
        if isinstance(p, OrderCreatedV2):
            row.update(promised_pickup_at=p.promised_pickup_at, quantity_ordered=p.quantity_ordered, urgent=1 if p.urgent else 0)
    elif isinstance(p, OrderShipped):
        row["shipped_at"] = p.shipped_at
        if isinstance(p, OrderShippedV2):
            row["quantity_shipped"] = p.quantity_shipped
    elif isinstance(p, OrderDelivered):
        row["delivered_at"] = p.delivered_at
        row["promised_at"] = p.promised_at
        if isinstance(p, OrderDeliveredV2):
            row["pod_due_at"] = p.pod_due_at
    elif isinstance(p, ProofOfDeliveryReturned):
        row.update(pod_returned_at=p.returned_at, pod_return_due_at=p.due_at)
    elif isinstance(p, OrderCancelled):
        row["cancelled_at"] = p.cancelled_at
    elif isinstance(p, ShipmentDelayed):
        row["delay_minutes"] = p.delay_minutes
    elif isinstance(p, ShipmentDamaged):
        row.update(damaged=1, damage_loss=_f(p.estimated_loss) or 0.0)
    elif isinstance(p, ShipmentLost):
        row.update(lost=1, lost_value=_f(p.declared_value) or 0.0)
    return row


def _invoice_row(p: PaymentReceived | PaymentOverdue, customer_id: str) -> dict:
    row = {
        "invoice_id": p.invoice_id,
        "customer_id": customer_id,
        "amount": float(p.amount),
        "currency": p.currency,
        "due_day": day_number(p.due_date),
    }
    if isinstance(p, PaymentReceived):
        row["paid_at"] = p.paid_at
        row["paid_day"] = day_number(p.paid_at)
    else:
        row["days_overdue"] = p.days_overdue
    return row


def _complaint_row(p: ComplaintFiled | ComplaintResolved, customer_id: str) -> dict:
    row = {"complaint_id": p.complaint_id, "customer_id": customer_id}
    if isinstance(p, ComplaintFiled):
        row.update(priority=p.priority, category=p.category[:100], filed_at=p.filed_at)
    else:
        row.update(
            resolved_at=p.resolved_at,
            within_sla=1 if p.within_sla else 0,
            outcome=p.outcome[:200],
            compensation=_f(p.compensation_amount) or 0.0,
        )
    return row


async def resolve_ids(session: AsyncSession, ids: set[str]) -> tuple[dict[str, str], set[str]]:
    """(alias map merged -> survivor, erased ids) for the given customer ids."""
    aliases: dict[str, str] = {}
    erased: set[str] = set()
    id_list = sorted(ids)
    if session.get_bind().dialect.name == "postgresql":
        aliases, erased = await _aliases_and_erased_postgresql(session, id_list)
    else:
        for merged_in, erased_in in zip(
            id_filters(session, customer_aliases.c.merged_id, id_list), id_filters(session, erased_customers.c.customer_id, id_list)
        ):
            aliases.update(
                (await session.execute(select(customer_aliases.c.merged_id, customer_aliases.c.survivor_id).where(merged_in))).all()
            )
            erased.update((await session.execute(select(erased_customers.c.customer_id).where(erased_in))).scalars())
    more = set(aliases.values()) - ids
    if more:
        erased.update(
            (await session.execute(select(erased_customers.c.customer_id).where(erased_customers.c.customer_id.in_(list(more))))).scalars()
        )
    return aliases, erased


_ALIASES_AND_ERASED = (
    "SELECT merged_id, survivor_id FROM customer_aliases WHERE merged_id = ANY($1::varchar[]) "
    "UNION ALL SELECT customer_id, NULL FROM erased_customers WHERE customer_id = ANY($1::varchar[])"
)


async def _aliases_and_erased_postgresql(session: AsyncSession, ids: list[str]) -> tuple[dict[str, str], set[str]]:
    """Both look-ups in one round trip: alias rows carry their survivor, tombstones none."""
    connection = await session.connection()
    aliases: dict[str, str] = {}
    erased: set[str] = set()
    for customer_id, survivor_id in (await connection.exec_driver_sql(_ALIASES_AND_ERASED, (ids,))).all():
        if survivor_id is None:
            erased.add(customer_id)
        else:
            aliases[customer_id] = survivor_id
    return aliases, erased


def id_filters(session: AsyncSession, column, ids: list[str]):
    """WHERE clauses selecting these ids: one `= ANY(array)` parameter on PostgreSQL (one statement, no
    per-id bind rendering), IN lists of 500 on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam("ids", ids, type_=ARRAY(String)))
        return
    for start in range(0, len(ids), 500):
        yield column.in_(ids[start : start + 500])


async def merge_customer(session: AsyncSession, merged_id: str, survivor_id: str, at: dt.datetime) -> None:
    """Move every fact of merged_id to survivor_id and remember the alias for events still on their way."""
    if merged_id == survivor_id:
        return
    # the mark first: a rescoring pass that locked it (FOR UPDATE) commits before the merged id's scores go
    await session.execute(delete(rescore_queue).where(rescore_queue.c.customer_id == merged_id))
    await insert_ignore(session, customer_aliases, [{"merged_id": merged_id, "survivor_id": survivor_id, "merged_at": at}], "merged_id")
    await session.execute(update(customer_aliases).where(customer_aliases.c.survivor_id == merged_id).values(survivor_id=survivor_id))
    for table in FACT_TABLES:
        await session.execute(update(table).where(table.c.customer_id == merged_id).values(customer_id=survivor_id))
    await session.execute(delete(customer_scores).where(customer_scores.c.customer_id == merged_id))
    for table in (service_level_months, service_level_breaches):
        await session.execute(delete(table).where(table.c.customer_id == merged_id))
    await session.execute(delete(score_history).where(score_history.c.customer_id == merged_id))
    await session.execute(delete(customers).where(customers.c.customer_id == merged_id))


async def erase_customer(session: AsyncSession, customer_id: str, at: dt.datetime) -> None:
    """Forget the customer's history; a tombstone makes late events for it be dropped too."""
    # the mark first: a rescoring pass that locked it (FOR UPDATE) commits before the scores are deleted
    await session.execute(delete(rescore_queue).where(rescore_queue.c.customer_id == customer_id))
    await insert_ignore(session, erased_customers, [{"customer_id": customer_id, "erased_at": at}], "customer_id")
    for table in (*FACT_TABLES, customer_scores, score_history, service_level_months, service_level_breaches, customers):
        await session.execute(delete(table).where(table.c.customer_id == customer_id))


async def apply_events(session: AsyncSession, envelopes: Sequence[EventEnvelope], payloads: Sequence[EventPayload]) -> set[str]:
    """Apply a batch of events to the fact tables. Returns the (surviving, not erased) customers touched.

    Amounts are summed as they come: the event schema accepts only the configured currencies, and the
    scoring settings refuse to start unless that is the scoring currency alone."""
    now = utcnow()
    touched: set[str] = set()

    # merges and erasures first: facts of the same batch are then routed through the aliases
    for p in payloads:
        if isinstance(p, CustomerMerged):
            aliases, erased = await resolve_ids(session, {p.survivor_id})
            survivor = aliases.get(p.survivor_id, p.survivor_id)
            await merge_customer(session, p.merged_id, survivor, p.merged_at)
            if survivor not in erased:
                touched.add(survivor)
        elif isinstance(p, CustomerErased) and p.contact_id is None:
            await erase_customer(session, p.customer_id, p.erased_at)

    ids = {p.customer_id for p in payloads if hasattr(p, "customer_id")}
    aliases, erased = await resolve_ids(session, ids)
    resolve = lambda cid: aliases.get(cid, cid)  # noqa: E731

    profile_rows: dict[str, dict] = {}
    rows: dict[str, list[dict]] = defaultdict(list)
    for envelope, p in zip(envelopes, payloads):
        if isinstance(p, (CustomerMerged, CustomerErased)):
            continue
        if isinstance(p, (CustomerRegistered, CustomerUpdated)):
            if p.customer_id in aliases or p.customer_id in erased:
                continue  # a profile of a merged-away or erased customer is not news
            row = {
                "customer_id": p.customer_id,
                "name": p.name[:200],
                "is_stub": 0,
                "credit_limit": p.credit_limit,
                "payment_days": p.payment_days,
                "share_of_wallet": p.share_of_wallet,
                "potential_volume": _f(getattr(p, "potential_volume", None)),
                "size_band": p.size_band,
                "region": _text(p.region),
                "industry": _text(p.industry),
                "account_manager": _text(p.account_manager),
                "service_level_agreement": getattr(p, "service_level_agreement", None) or None,  # v3 on; none: the defaults
                "profile_at": envelope.occurred_at,
                "first_seen_at": now,
            }
            rank = (envelope.occurred_at, str(envelope.event_id))
            if p.customer_id not in profile_rows or rank > profile_rows[p.customer_id][0]:
                profile_rows[p.customer_id] = (rank, row)
            touched.add(p.customer_id)
            continue
        customer_id = resolve(p.customer_id)
        if customer_id in erased or p.customer_id in erased:
            continue
        if isinstance(p, (PaymentReceived, PaymentOverdue)):
            rows["invoices"].append(_invoice_row(p, customer_id))
        elif isinstance(p, (ComplaintFiled, ComplaintResolved)):
            rows["complaints"].append(_complaint_row(p, customer_id))
        elif isinstance(p, InvoiceCorrected):
            rows["invoice_corrections"].append(
                {
                    "correction_id": p.correction_id,
                    "customer_id": customer_id,
                    "invoice_id": p.invoice_id,
                    "previous_amount": float(p.previous_amount),
                    "amount": float(p.amount),
                    "corrected_at": p.corrected_at,
                }
            )
        elif isinstance(p, SurveyAnswered):
            rows["surveys"].append(
                {"complaint_id": p.complaint_id, "customer_id": customer_id, "score": p.score, "answered_at": p.answered_at}
            )
        elif isinstance(p, SatisfactionSurveyAnswered):
            # a satisfaction survey (customer-profile: a campaign's link or the quarterly survey) joins the callback surveys
            # in the survey mean; the table's key is the answer's id, prefixed so it never meets a complaint's
            rows["surveys"].append(
                {
                    "complaint_id": f"{SATISFACTION_SURVEY_KEY}{p.survey_id}",
                    "customer_id": customer_id,
                    "score": p.score,
                    "answered_at": p.answered_at,
                }
            )
        elif hasattr(p, "order_id"):
            rows["orders"].append(_order_row(p, customer_id))
        else:
            continue
        touched.add(customer_id)

    await upsert(session, orders, merge_rows(rows["orders"], "order_id", ORDER_RULES), "order_id", ORDER_RULES)
    await upsert(session, invoices, merge_rows(rows["invoices"], "invoice_id", INVOICE_RULES), "invoice_id", INVOICE_RULES)
    await upsert(
        session,
        invoice_corrections,
        merge_rows(rows["invoice_corrections"], "correction_id", CORRECTION_RULES),
        "correction_id",
        CORRECTION_RULES,
    )
    await upsert(session, complaints, merge_rows(rows["complaints"], "complaint_id", COMPLAINT_RULES), "complaint_id", COMPLAINT_RULES)
    await upsert(session, surveys, merge_rows(rows["surveys"], "complaint_id", SURVEY_RULES), "complaint_id", SURVEY_RULES)
    await ensure_stubs(session, touched - set(profile_rows), now)
    if profile_rows:
        await _upsert_profiles(session, [row for _, row in profile_rows.values()])
    return touched


async def mark_dirty(
    session: AsyncSession, customer_ids: set[str], now: dt.datetime | None = None, *, traces: Mapping[str, str | None] | None = None
) -> None:
    """Queue customers for rescoring: insert a mark, or bump its seq so a rescoring pass that read the old
    seq (and maybe the old facts) leaves the mark in place.

    Insert-or-nothing (RETURNING what was inserted), then an UPDATE of the marks that already existed, also
    those inserted meanwhile by another transaction. `traces` (tracing on): a customer's mark keeps the trace of the
    event that made it (the rescoring continues that one); a mark that exists keeps its own."""
    if not customer_ids:
        return
    now = now or utcnow()
    ids = sorted(customer_ids)  # the same lock order in every transaction
    marks = [{"customer_id": cid, "seq": 1, "marked_at": now} for cid in ids]
    if traces:
        for mark in marks:
            mark["traceparent"] = traces.get(mark["customer_id"])
    inserted = await insert_ignore(session, rescore_queue, marks, "customer_id", returning="customer_id")
    existing = [cid for cid in ids if cid not in inserted]
    if existing:
        for where in id_filters(session, rescore_queue.c.customer_id, existing):
            await session.execute(update(rescore_queue).where(where).values(seq=rescore_queue.c.seq + 1, marked_at=now))


async def ensure_stubs(session: AsyncSession, ids: set[str], now: dt.datetime) -> None:
    """Unknown customers get a stub on first event; the profile fills it when it arrives."""
    await insert_ignore(
        session, customers, [{"customer_id": cid, "is_stub": 1, "first_seen_at": now} for cid in sorted(ids)], "customer_id"
    )


async def _upsert_profiles(session: AsyncSession, rows: list[dict]) -> None:
    """The newest profile (by the event's occurred_at) wins, whatever the arrival order."""
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(customers)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={
            c: excluded[c]
            for c in (
                "name",
                "is_stub",
                "credit_limit",
                "payment_days",
                "share_of_wallet",
                "potential_volume",
                "size_band",
                "region",
                "industry",
                "account_manager",
                "service_level_agreement",
                "profile_at",
            )
        },
        where=or_(customers.c.profile_at.is_(None), customers.c.profile_at <= excluded.profile_at),
    )
    await session.execute(stmt, rows)
