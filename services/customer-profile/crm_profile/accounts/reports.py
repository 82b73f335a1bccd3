"""The key-account programme's monthly service report (重点客户月度服务报告), docs/account-management.md.

On the 1st of each month (Asia/Shanghai) the profile stores one report per key account (class A as scoring last
announced it, or flagged by hand: `size_band=key_account`) for the month before: orders and revenue, service levels
against targets, complaints, satisfaction and visits, from this service's own tables and read models. The month's run
row commits in the same transaction as its reports and their KeyAccountReportReady events, so a month is reported
exactly once across restarts, crashes and replicas (a second replica's run fails on the run's primary key and rolls
back). An operator may run a past month by hand; a month already run is left as it is.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging
import re
import uuid

from sqlalchemy import or_, select
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


async def key_accounts(session: AsyncSession) -> list[tuple[Customer, AccountScore | None]]:
    """Live customers that are class A (scoring's last announcement) or flagged by hand."""
    query = (
        select(Customer, AccountScore)
        .outerjoin(AccountScore, AccountScore.customer_id == Customer.id)
        .where(
            Customer.merged_into.is_(None),
            Customer.status != MERGED,
            or_(AccountScore.abc_class == "A", Customer.size_band == KEY_ACCOUNT_BAND),
        )
        .order_by(Customer.id)
    )
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


async def generate_month(
    session: AsyncSession, period: kpis.Period, *, started_by: str, now: dt.datetime | None = None
) -> tuple[KeyAccountReportRun, bool]:
    """Store the month's reports and their events, once: (the run, True) when this call made them; (the earlier run,
    False) when the month was already run. The run row is flushed first, so a concurrent run of the same month waits
    on its key and fails there (IntegrityError) instead of writing a second set of reports."""
    existing = await session.get(KeyAccountReportRun, period.label)
    if existing is not None:
        return existing, False
    now = now or utcnow()
    run = KeyAccountReportRun(month=period.label, reports=0, started_by=started_by[:100], completed_at=now)
    session.add(run)
    await session.flush()
    facts = await MonthFacts().load(session, period)
    subscribed = set(
        (
            await session.scalars(
                select(KeyAccountReportSubscription.customer_id).where(KeyAccountReportSubscription.customer_opted_in.is_(True))
            )
        ).all()
    )
    for customer, score in await key_accounts(session):
        content = report_content(customer, score, facts, now)
        report = KeyAccountReport(
            id=str(uuid.uuid4()),
            customer_id=customer.id,
            month=period.label,
            account_manager=customer.account_manager,
            customer_opted_in=customer.id in subscribed,
            content=content,
            generated_at=now,
        )
        session.add(report)
        await emit(
            session,
            KeyAccountReportReady(
                report_id=report.id,
                customer_id=customer.id,
                month=period.label,
                account_manager=customer.account_manager,
                customer_opted_in=report.customer_opted_in,
                key_account_reasons=content["customer"]["key_account_reasons"],
                summary=summary_line(content),
                generated_at=now,
            ),
            key=customer.id,
            producer=SERVICE_NAME,
        )
        run.reports += 1
    await session.flush()
    return run, True


# --- the schedule -----------------------------------------------------------------------------------


async def run_due(runtime, now: dt.datetime | None = None) -> KeyAccountReportRun | None:
    """The 1st's run, if the month before today (Asia/Shanghai) has none yet (a worker down on the 1st catches up
    when it starts). None when nothing was due or another replica ran it at the same moment."""
    now = now or utcnow()
    period = previous_month(now.astimezone(BUSINESS_ZONE).date())
    async with runtime.db.sessions() as session:
        if await session.get(KeyAccountReportRun, period.label) is not None:
            return None
    try:
        async with runtime.transaction() as session:
            run, created = await generate_month(session, period, started_by=SCHEDULER, now=now)
    except IntegrityError:
        return None
    if created:
        log.info("key-account reports for %s: %d stored", period.label, run.reports)
    return run if created else None


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
