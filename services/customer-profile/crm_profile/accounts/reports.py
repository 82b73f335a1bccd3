"""The key-account programme's monthly service report (重点客户月度服务报告), docs/account-management.md.

On the 1st of each month (Asia/Shanghai) the profile stores one report per key account (class A as scoring last
announced it, or flagged by hand: `size_band=key_account`) for the month before: orders and revenue, service levels
against targets, complaints, satisfaction and visits, from this service's own tables and read models. The reports are
stored in chunks (PROFILE_KEY_ACCOUNT_REPORTS_CHUNK per transaction, so SQLite's write lock is held one chunk at a
time): each chunk commits its reports, their KeyAccountReportReady events and the run's cursor together, so a month is
reported exactly once across restarts, crashes (kill -9 resumes at the cursor) and replicas (a chunk is claimed by
moving the cursor, compare and set). An operator may run a past month by hand; a month complete is left as it is.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging
import re
import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import utcnow
from crm_common.events.customers import KeyAccountReportReady
from crm_common.outbox import emit
from crm_profile import SERVICE_NAME
from crm_profile.accounts import kpis, surveys
from crm_profile.accounts.models import (
    AccountScore,
    AccountServiceBreach,
    KeyAccountReport,
    KeyAccountReportRun,
    KeyAccountReportSubscription,
)
from crm_profile.accounts.service import (
    BUSINESS_ZONE,
    KEY_ACCOUNT_BAND,
    STAFF_ROLES,
    Actor,
    ActorRequired,
    Forbidden,
    WorkspaceError,
    applicable_quota,
    key_account_reasons,
    list_quotas,
)
from crm_profile.customers.models import MERGED, Customer

log = logging.getLogger(__name__)
MONTH_PATTERN = r"^(\d{4})-(0[1-9]|1[0-2])$"
SCHEDULER = "scheduler"
SERVICE_LEVEL_SOURCE = (
    "scoring's ServiceLevelBreached: the measures that missed their agreed target in the month; "
    "a month without a breach met every target that was measured (measures that met theirs are not announced)"
)


class BadMonth(WorkspaceError):
    pass


class ReportNotFound(WorkspaceError):
    pass


class CustomerNotFound(WorkspaceError):
    pass


# --- which month ------------------------------------------------------------------------------------


def previous_month(today: dt.date) -> kpis.Period:
    """The month before the one holding `today`: the one the 1st's run reports."""
    start = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return kpis.Period(start.strftime("%Y-%m"), start, today.replace(day=1), 1)


def parse_month(text: str, today: dt.date) -> kpis.Period:
    """A finished month YYYY-MM since 2000 (a report covers a whole month, so the current one is refused)."""
    if not re.match(MONTH_PATTERN, text):
        raise BadMonth("month is YYYY-MM")
    if int(text[:4]) < 2000:  # checked before building the date: year 0 is no date at all
        raise BadMonth("the month is a finished month since 2000-01")
    start = dt.date(int(text[:4]), int(text[5:]), 1)
    period = kpis.Period(text, start, kpis._add_months(start, 1), 1)
    if period.end > today:
        raise BadMonth("the month is a finished month since 2000-01")
    return period


# --- who may read -----------------------------------------------------------------------------------


async def _customer(session: AsyncSession, customer_id: str) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.status == MERGED:
        raise CustomerNotFound(customer_id)
    return customer


async def opted_in(session: AsyncSession, customer_id: str) -> bool:
    row = await session.get(KeyAccountReportSubscription, customer_id)
    return bool(row and row.customer_opted_in)


async def check_reader(session: AsyncSession, actor: Actor | None, customer: Customer) -> None:
    """Staff read every report; an account manager those of their customers; the customer its own, once it opted in.
    A reader who may not read them gets 404, like a customer that does not exist (nothing is revealed)."""
    if actor is None:
        raise ActorRequired()
    if actor.role in STAFF_ROLES:
        return
    if actor.role == "account_manager" and customer.account_manager == actor.subject:
        return
    if actor.role == "customer" and actor.subject == customer.id and await opted_in(session, customer.id):
        return
    raise CustomerNotFound(customer.id)


def check_subscription_editor(actor: Actor | None) -> None:
    if actor is None:
        raise ActorRequired()
    if actor.role not in STAFF_ROLES | {"account_manager", "customer"}:
        raise Forbidden("The customer, its account manager or staff set the customer's choice.")


async def subscription_customer(session: AsyncSession, actor: Actor, customer_id: str) -> Customer:
    """The customer whose choice `actor` may read or set: its own for a customer (the choice is the customer's), its
    customers' for an account manager, any for staff. Anyone else's is a 404, like a customer that does not exist."""
    customer = await _customer(session, customer_id)
    if actor.role == "account_manager" and customer.account_manager != actor.subject:
        raise CustomerNotFound(customer_id)
    if actor.role == "customer" and actor.subject != customer.id:
        raise CustomerNotFound(customer_id)
    return customer


async def set_subscription(session: AsyncSession, actor: Actor, customer_id: str, customer_opted_in: bool) -> KeyAccountReportSubscription:
    await subscription_customer(session, actor, customer_id)
    row = await session.get(KeyAccountReportSubscription, customer_id)
    if row is None:
        row = KeyAccountReportSubscription(customer_id=customer_id)
        session.add(row)
    row.customer_opted_in, row.changed_at, row.changed_by = customer_opted_in, utcnow(), actor.subject
    await session.flush()
    return row


# --- the report -------------------------------------------------------------------------------------


async def key_accounts(
    session: AsyncSession, *, after: str | None = None, limit: int | None = None
) -> list[tuple[Customer, AccountScore | None]]:
    """Live customers that are class A (scoring's last announcement) or flagged by hand, by id (after `after`)."""
    query = (
        select(Customer, AccountScore)
        .outerjoin(AccountScore, AccountScore.customer_id == Customer.id)
        .where(
            Customer.merged_into.is_(None),
            Customer.status != MERGED,
            or_(AccountScore.abc_class == "A", Customer.size_band == KEY_ACCOUNT_BAND),
        )
        .order_by(Customer.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Customer.id > after)
    return list((await session.execute(query)).all())


async def _missed_targets(session: AsyncSession, month: str) -> dict[str, AccountServiceBreach]:
    rows = await session.scalars(select(AccountServiceBreach).where(AccountServiceBreach.month == month))
    return {row.customer_id: row for row in rows}


class MonthFacts:
    """Everything the month holds for every customer, read once (grouped queries) for all the month's reports."""

    async def load(self, session: AsyncSession, period: kpis.Period) -> MonthFacts:
        self.period = period
        self.currency = kpis.revenue_currency()
        self.orders = await kpis._orders(session, period)
        self.previous_orders = await kpis._orders(session, period.previous())
        self.visits = await kpis._visits(session, period)
        self.complaints, self.post_complaint_scores = await kpis._complaints(session, period)
        self.breaches = await _missed_targets(session, period.label)
        self.quotas = await list_quotas(session)
        self.survey_scores = await surveys.scores_between(session, period.start_at, period.end_at)
        return self


def report_content(customer: Customer, score: AccountScore | None, facts: MonthFacts, generated_at: dt.datetime) -> dict:
    period, cid = facts.period, customer.id
    revenue, orders = facts.orders.get(cid, (0, 0))
    previous_revenue = facts.previous_orders.get(cid, (0, 0))[0]
    abc_class, tier = (score.abc_class, score.tier) if score else (None, None)
    quota = applicable_quota(facts.quotas, abc_class, tier)
    breach = facts.breaches.get(cid)
    complaints = facts.complaints.get(cid, 0)
    scores = facts.post_complaint_scores.get(cid, [])
    periodic = facts.survey_scores.get(cid, [])
    return {
        "month": period.label,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "generated_at": generated_at.isoformat(),
        "customer": {
            "id": cid,
            "name": customer.name,
            "account_manager": customer.account_manager,
            "abc_class": abc_class,
            "tier": tier,
            "relationship_level": customer.relationship_level,
            "key_account_reasons": key_account_reasons(abc_class, customer.size_band),
        },
        "orders": {
            "count": orders,
            "revenue": float(revenue),
            "revenue_previous_month": float(previous_revenue),
            "revenue_currency": facts.currency,
        },
        "service_levels": {
            "targets_met": breach is None,
            "measures_missed": breach.missed if breach else 0,
            "missed_targets": (breach.missed_targets or []) if breach else [],
            "source": SERVICE_LEVEL_SOURCE,
        },
        "complaints": {"filed": complaints, "complaint_rate": kpis._ratio(complaints, orders)},
        "satisfaction": {
            "post_complaint_surveys": len(scores),
            "post_complaint_average": round(sum(scores) / len(scores), 2) if scores else None,
            "periodic_surveys": len(periodic),
            "periodic_average": round(sum(periodic) / len(periodic), 2) if periodic else None,
        },
        "visits": {
            "done": facts.visits.get(cid, 0),
            "required": (quota.visits if quota.period == "month" else round(quota.visits / 3, 2)) if quota else None,
        },
    }


def summary_line(content: dict) -> str:
    orders, levels = content["orders"], content["service_levels"]
    breaches = "all targets met" if levels["targets_met"] else f"{levels['measures_missed']} service-level targets missed"
    return (
        f"{content['month']}: {orders['count']} orders, {orders['revenue']:.2f} {orders['revenue_currency']}, {breaches}, "
        f"{content['complaints']['filed']} complaints, {content['visits']['done']} visits"
    )[:500]


class ChunkTaken(Exception):
    """Another process stored the chunk (or finished the run) since this one read the cursor."""


async def _claim(runtime, period: kpis.Period, started_by: str, now: dt.datetime) -> KeyAccountReportRun:
    """The month's run row, created (and committed) by the first process to ask; a racing process finds it."""
    async with runtime.db.sessions() as session:
        run = await session.get(KeyAccountReportRun, period.label)
        if run is not None:
            return run
    try:
        async with runtime.transaction() as session:
            run = KeyAccountReportRun(month=period.label, reports=0, started_by=started_by[:100], started_at=now)
            session.add(run)
        return run
    except IntegrityError:  # claimed by another process a moment ago: resume it with that one
        async with runtime.db.sessions() as session:
            return await session.get(KeyAccountReportRun, period.label)


async def _store_chunk(
    session: AsyncSession, run: KeyAccountReportRun, facts: MonthFacts, subscribed: set[str], limit: int
) -> KeyAccountReportRun:
    """The next `limit` key accounts after the run's cursor: the cursor moves first (compare and set: the first write,
    so a process that read an older cursor changes nothing and raises ChunkTaken), then their reports and events, all
    in the caller's transaction. Fewer than `limit` left: the run is complete."""
    chunk = await key_accounts(session, after=run.last_customer_id, limit=limit)
    cursor = KeyAccountReportRun.last_customer_id
    moved = await session.execute(
        update(KeyAccountReportRun)
        .where(
            KeyAccountReportRun.month == run.month,
            KeyAccountReportRun.completed_at.is_(None),
            cursor.is_(None) if run.last_customer_id is None else cursor == run.last_customer_id,
        )
        .values(
            last_customer_id=chunk[-1][0].id if chunk else run.last_customer_id,
            reports=KeyAccountReportRun.reports + len(chunk),
            completed_at=utcnow() if len(chunk) < limit else None,
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise ChunkTaken(run.month)
    generated_at = run.started_at or utcnow()
    for customer, score in chunk:
        content = report_content(customer, score, facts, generated_at)
        report = KeyAccountReport(
            id=str(uuid.uuid4()),
            customer_id=customer.id,
            month=run.month,
            account_manager=customer.account_manager,
            customer_opted_in=customer.id in subscribed,
            content=content,
            generated_at=generated_at,
        )
        session.add(report)
        await emit(
            session,
            KeyAccountReportReady(
                report_id=report.id,
                customer_id=customer.id,
                month=run.month,
                account_manager=customer.account_manager,
                customer_opted_in=report.customer_opted_in,
                key_account_reasons=content["customer"]["key_account_reasons"],
                summary=summary_line(content),
                generated_at=generated_at,
            ),
            key=customer.id,
            producer=SERVICE_NAME,
        )
    await session.flush()
    return await session.get(KeyAccountReportRun, run.month, populate_existing=True)


async def run_month(
    runtime, period: kpis.Period, *, started_by: str, chunk_size: int, now: dt.datetime | None = None
) -> tuple[KeyAccountReportRun, bool]:
    """Store the month's reports and their events, chunk by chunk (each chunk one transaction with the run's cursor):
    (the run, True) when this call stored or finished some; (the run, False) when the month was complete already. A
    process killed between or inside chunks leaves whole chunks; the next pass resumes at the cursor, so each key
    account gets one report and one event. Racing processes share the work: a chunk one of them stored is not stored
    again (ChunkTaken: read the cursor again)."""
    now = now or utcnow()
    run = await _claim(runtime, period, started_by, now)
    if run.completed_at is not None:
        return run, False
    async with runtime.db.sessions() as session:
        facts = await MonthFacts().load(session, period)
        subscribed = set(
            (
                await session.scalars(
                    select(KeyAccountReportSubscription.customer_id).where(KeyAccountReportSubscription.customer_opted_in.is_(True))
                )
            ).all()
        )
    while run.completed_at is None:
        try:
            async with runtime.transaction() as session:
                current = await session.get(KeyAccountReportRun, period.label)
                if current.completed_at is not None:
                    return current, True
                run = await _store_chunk(session, current, facts, subscribed, chunk_size)
        except ChunkTaken:
            async with runtime.db.sessions() as session:
                run = await session.get(KeyAccountReportRun, period.label)
    return run, True


# --- the schedule -----------------------------------------------------------------------------------


async def run_due(runtime, now: dt.datetime | None = None) -> KeyAccountReportRun | None:
    """The 1st's run, if the month before today (Asia/Shanghai) is not complete yet (a worker down on the 1st catches
    up when it starts; a run killed half-way is resumed). None when nothing was due."""
    now = now or utcnow()
    period = previous_month(now.astimezone(BUSINESS_ZONE).date())
    async with runtime.db.sessions() as session:
        done = await session.get(KeyAccountReportRun, period.label)
        if done is not None and done.completed_at is not None:
            return None
    run, worked = await run_month(runtime, period, started_by=SCHEDULER, chunk_size=runtime.settings.key_account_reports_chunk, now=now)
    if worked:
        log.info("key-account reports for %s: %d stored", period.label, run.reports)
    return run if worked else None


async def schedule_loop(runtime, interval_s: float) -> None:
    while True:
        try:
            await run_due(runtime)
        except asyncio.CancelledError:
            raise
        except Exception:  # database away: the next pass tries again
            log.exception("key-account monthly reports failed")
        await asyncio.sleep(interval_s)


# --- reading ----------------------------------------------------------------------------------------


async def customer_reports(session: AsyncSession, actor: Actor | None, customer_id: str) -> list[KeyAccountReport]:
    await check_reader(session, actor, await _customer(session, customer_id))
    rows = await session.scalars(
        select(KeyAccountReport).where(KeyAccountReport.customer_id == customer_id).order_by(KeyAccountReport.month.desc())
    )
    return list(rows.all())


async def customer_report(session: AsyncSession, actor: Actor | None, customer_id: str, month: str) -> KeyAccountReport:
    await check_reader(session, actor, await _customer(session, customer_id))
    if not re.match(MONTH_PATTERN, month):
        raise BadMonth("month is YYYY-MM")
    report = await session.scalar(
        select(KeyAccountReport).where(KeyAccountReport.customer_id == customer_id, KeyAccountReport.month == month)
    )
    if report is None:
        raise ReportNotFound(f"no key-account report of {customer_id} for {month}")
    return report


async def month_reports(session: AsyncSession, owner: str | None, month: str, *, limit: int, after: str | None) -> list[KeyAccountReport]:
    """The month's reports of `owner`'s customers now (None: everyone's), by customer id."""
    if not re.match(MONTH_PATTERN, month):
        raise BadMonth("month is YYYY-MM")
    query = select(KeyAccountReport).where(KeyAccountReport.month == month).order_by(KeyAccountReport.customer_id).limit(limit)
    if owner is not None:
        query = query.join(Customer, Customer.id == KeyAccountReport.customer_id).where(Customer.account_manager == owner)
    if after:
        query = query.where(KeyAccountReport.customer_id > after)
    return list((await session.scalars(query)).all())


async def list_runs(session: AsyncSession, limit: int = 24) -> list[KeyAccountReportRun]:
    return list((await session.scalars(select(KeyAccountReportRun).order_by(KeyAccountReportRun.month.desc()).limit(limit))).all())


# --- downloads --------------------------------------------------------------------------------------


def _rows(content: dict) -> list[tuple[str, str, object]]:
    rows: list[tuple[str, str, object]] = [("report", "month", content["month"]), ("report", "generated_at", content["generated_at"])]
    customer = content["customer"]
    rows += [("customer", key, "; ".join(value) if isinstance(value, list) else value) for key, value in customer.items()]
    for section in ("orders", "complaints", "satisfaction", "visits"):
        rows += [(section, key, value) for key, value in content[section].items()]
    levels = content["service_levels"]
    rows += [("service_levels", "targets_met", levels["targets_met"]), ("service_levels", "measures_missed", levels["measures_missed"])]
    rows += [("service_levels", f"missed:{t['measure']}", f"actual {t['actual']} / target {t['target']}") for t in levels["missed_targets"]]
    return rows


def as_csv(content: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "measure", "value"])
    for section, key, value in _rows(content):
        writer.writerow([section, key, "" if value is None else value])
    return out.getvalue()


def as_markdown(content: dict) -> str:
    customer = content["customer"]
    lines = [
        f"# Key-account service report {content['month']}: {customer['name']}",
        "",
        f"Account manager: {customer['account_manager'] or '-'}; key account because: {', '.join(customer['key_account_reasons']) or '-'}.",
        "",
        "| section | measure | value |",
        "|---|---|---|",
    ]
    for section, key, value in _rows(content)[2:]:
        shown = "-" if value is None else str(value).replace("|", "\\|")
        lines.append(f"| {section} | {key} | {shown} |")
    lines += ["", f"Service levels: {content['service_levels']['source']}.", ""]
    return "\n".join(lines)
