"""KPIs per account manager and period, and the ranking of managers (docs/account-management.md defines each one).

Everything is computed from this service's own tables and the read models its consumers keep (orders, complaints,
service-level breaches, scoring's view): never another service's tables. A period is a calendar month (`2026-11`)
or quarter (`2026-Q4`) in Asia/Shanghai. The portfolio is each manager's customers now (live, `account_manager` set);
losses and win-backs count for the manager of the case (the customer's manager when it was lost).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.events.bounds import accepted_currencies
from crm_common.events.complaints import ComplaintFiled, SurveyAnswered
from crm_common.events.scoring import ServiceLevelBreached
from crm_profile.accounts import surveys as satisfaction_surveys
from crm_profile.accounts.models import AccountComplaint, AccountOrder, AccountScore, AccountServiceBreach, WinBackCase
from crm_profile.accounts.service import BUSINESS_ZONE, WorkspaceError, _portfolio_filter, applicable_quota, list_quotas
from crm_profile.customers.models import Customer, Interaction

PERIOD_PATTERN = r"^(\d{4})-(0[1-9]|1[0-2]|Q[1-4])$"
# how each ranking key orders managers: True = a higher value ranks first
RANKINGS = {
    "revenue": True,
    "revenue_growth": True,
    "retention_rate": True,
    "churn_rate": False,
    "win_backs": True,
    "visit_attainment": True,
    "follow_up_on_time_rate": True,
    "complaint_rate": False,
    "post_complaint_satisfaction": True,
    "satisfaction": True,
    "service_level_breaches": False,
}


class BadPeriod(WorkspaceError):
    pass


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date  # first day
    end: dt.date  # first day after
    months: int

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), BUSINESS_ZONE)

    @property
    def end_at(self) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time(), BUSINESS_ZONE)

    def month_labels(self) -> list[str]:
        return [_add_months(self.start, i).strftime("%Y-%m") for i in range(self.months)]

    def previous(self) -> Period:
        start = _add_months(self.start, -self.months)
        label = start.strftime("%Y-%m") if self.months == 1 else f"{start.year}-Q{(start.month - 1) // 3 + 1}"
        return Period(label, start, self.start, self.months)


def revenue_currency() -> str:
    """Revenue KPIs add up the orders in the first configured currency (CRM_CURRENCIES); others are counted, not converted."""
    return accepted_currencies()[0]


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_period(text: str, today: dt.date) -> Period:
    found = re.match(PERIOD_PATTERN, text)
    if not found:
        raise BadPeriod("period is a month YYYY-MM or a quarter YYYY-Qn")
    year, part = int(found.group(1)), found.group(2)
    if year < 2000:  # checked before building the date: year 0 is no date at all
        raise BadPeriod("the period starts between 2000 and today")
    if part.startswith("Q"):
        start, months = dt.date(year, 3 * (int(part[1]) - 1) + 1, 1), 3
    else:
        start, months = dt.date(year, int(part), 1), 1
    if year < 2000 or start > today:
        raise BadPeriod("the period starts between 2000 and today")
    return Period(text, start, _add_months(start, months), months)


# --- events in --------------------------------------------------------------------------------------


async def apply_complaint_filed(session: AsyncSession, filed: ComplaintFiled) -> None:
    row = await session.get(AccountComplaint, filed.complaint_id)
    if row is None:
        session.add(AccountComplaint(complaint_id=filed.complaint_id, customer_id=filed.customer_id, filed_at=filed.filed_at))
    else:
        row.customer_id, row.filed_at = filed.customer_id, filed.filed_at


async def apply_survey_answered(session: AsyncSession, answered: SurveyAnswered) -> None:
    row = await session.get(AccountComplaint, answered.complaint_id)
    if row is None:
        row = AccountComplaint(complaint_id=answered.complaint_id, customer_id=answered.customer_id)
        session.add(row)
    row.survey_score, row.answered_at = answered.score, answered.answered_at


async def apply_service_level_breached(session: AsyncSession, breached: ServiceLevelBreached) -> None:
    row = await session.get(AccountServiceBreach, (breached.customer_id, breached.month))
    targets = [target.model_dump() for target in breached.missed]
    if row is None:
        session.add(
            AccountServiceBreach(
                customer_id=breached.customer_id,
                month=breached.month,
                missed=len(targets),
                missed_targets=targets,
                detected_at=breached.detected_at,
            )
        )
    elif breached.detected_at >= row.detected_at:  # the set of missed measures changed: the latest announcement wins
        row.missed, row.missed_targets, row.detected_at = len(targets), targets, breached.detected_at


# --- the KPIs ---------------------------------------------------------------------------------------


def _ratio(part, whole, places: int = 4) -> float | None:
    return round(float(part) / float(whole), places) if whole else None


async def _portfolios(session: AsyncSession, owner: str | None):
    query = (
        select(Customer.id, Customer.account_manager, Customer.first_order_date, Customer.status, AccountScore.abc_class, AccountScore.tier)
        .outerjoin(AccountScore, AccountScore.customer_id == Customer.id)
        .where(_portfolio_filter(owner))
    )
    return (await session.execute(query)).all()


async def _orders(session: AsyncSession, period: Period) -> dict[str, tuple[Decimal, int]]:
    """Per customer: revenue in revenue_currency() and the number of orders (any currency) dated in the period."""
    in_period = and_(
        AccountOrder.order_date >= period.start_at, AccountOrder.order_date < period.end_at, AccountOrder.cancelled_at.is_(None)
    )
    revenue = func.sum(AccountOrder.amount).filter(AccountOrder.currency == revenue_currency())
    rows = await session.execute(
        select(AccountOrder.customer_id, revenue, func.count()).where(in_period).group_by(AccountOrder.customer_id)
    )
    return {cid: (Decimal(amount or 0), count) for cid, amount, count in rows.all()}


async def _ordered_before(session: AsyncSession, start: dt.datetime) -> set[str]:
    rows = await session.scalars(select(AccountOrder.customer_id).where(AccountOrder.order_date < start).distinct())
    return set(rows.all())


async def _visits(session: AsyncSession, period: Period) -> dict[str, int]:
    rows = await session.execute(
        select(Interaction.customer_id, func.count())
        .where(Interaction.kind == "visit", Interaction.occurred_at >= period.start_at, Interaction.occurred_at < period.end_at)
        .group_by(Interaction.customer_id)
    )
    return dict(rows.all())


async def _follow_ups(session: AsyncSession, period: Period, today: dt.date) -> dict[str, tuple[int, int]]:
    """Per customer: follow-ups due in the period (up to today) and those answered by a later interaction by their date."""
    last_due = min(period.end - dt.timedelta(days=1), today)
    promised = (
        await session.execute(
            select(Interaction.customer_id, Interaction.occurred_at, Interaction.next_follow_up).where(
                Interaction.next_follow_up >= period.start, Interaction.next_follow_up <= last_due
            )
        )
    ).all()
    if not promised:
        return {}
    customers = {cid for cid, _, _ in promised}
    earliest = min(at for _, at, _ in promised)
    later: dict[str, list[dt.datetime]] = defaultdict(list)
    rows = await session.execute(
        select(Interaction.customer_id, Interaction.occurred_at).where(
            Interaction.customer_id.in_(customers), Interaction.occurred_at > earliest
        )
    )
    for cid, at in rows.all():
        later[cid].append(at)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for cid, at, due in promised:
        counts[cid][0] += 1
        counts[cid][1] += any(at < other and other.astimezone(BUSINESS_ZONE).date() <= due for other in later[cid])
    return {cid: (due, on_time) for cid, (due, on_time) in counts.items()}


async def _complaints(session: AsyncSession, period: Period) -> tuple[dict[str, int], dict[str, list[int]]]:
    filed = await session.execute(
        select(AccountComplaint.customer_id, func.count())
        .where(AccountComplaint.filed_at >= period.start_at, AccountComplaint.filed_at < period.end_at)
        .group_by(AccountComplaint.customer_id)
    )
    scores: dict[str, list[int]] = defaultdict(list)
    answered = await session.execute(
        select(AccountComplaint.customer_id, AccountComplaint.survey_score).where(
            AccountComplaint.answered_at >= period.start_at, AccountComplaint.answered_at < period.end_at
        )
    )
    for cid, score in answered.all():
        scores[cid].append(score)
    return dict(filed.all()), scores


async def _breaches(session: AsyncSession, period: Period) -> dict[str, int]:
    rows = await session.execute(
        select(AccountServiceBreach.customer_id, func.count())
        .where(AccountServiceBreach.month.in_(period.month_labels()))
        .group_by(AccountServiceBreach.customer_id)
    )
    return dict(rows.all())


def _lost_at_start(case: WinBackCase, start: dt.datetime) -> bool:
    """Lost before the period and not won back before it."""
    return case.lost_at < start and not (case.status == "won_back" and case.outcome_at is not None and case.outcome_at < start)


async def manager_kpis(session: AsyncSession, period: Period, today: dt.date, owner: str | None = None) -> list[dict]:
    """One row of KPIs per account manager (or only `owner`'s), unranked."""
    portfolio = await _portfolios(session, owner)
    cases = list((await session.scalars(select(WinBackCase))).all())
    orders, previous_orders = await _orders(session, period), await _orders(session, period.previous())
    visits, follow_ups = await _visits(session, period), await _follow_ups(session, period, today)
    complaints, surveys = await _complaints(session, period)
    breaches = await _breaches(session, period)
    satisfaction = await satisfaction_surveys.scores_between(session, period.start_at, period.end_at)
    quotas = await list_quotas(session)
    start_at, end_at = period.start_at, period.end_at
    lost_before = {case.customer_id for case in cases if _lost_at_start(case, start_at)}
    with_case = {case.customer_id for case in cases}
    ordered_before = await _ordered_before(session, start_at)

    rows: dict[str, dict] = {}
    for cid, manager, first_order_date, status, abc_class, tier in portfolio:
        row = rows.setdefault(manager, _empty_row(manager))
        row["customers"] += 1
        was_customer = cid in ordered_before or (first_order_date is not None and first_order_date < period.start)
        lost_untracked = status == "lost" and cid not in with_case  # lost before win-back cases existed: when is unknown
        if was_customer and cid not in lost_before and not lost_untracked:
            row["customers_at_start"] += 1
        revenue, count = orders.get(cid, (Decimal(0), 0))
        row["revenue"] += revenue
        row["orders"] += count
        row["active_customers"] += count > 0
        row["revenue_previous"] += previous_orders.get(cid, (Decimal(0), 0))[0]
        quota = applicable_quota(quotas, abc_class, tier)
        done = visits.get(cid, 0)
        row["visits_done"] += done
        if quota is not None:
            required = quota.visits * period.months / (1 if quota.period == "month" else 3)
            row["visits_required"] += required
            row["_visits_credited"] += min(done, required)
        due, on_time = follow_ups.get(cid, (0, 0))
        row["follow_ups_due"] += due
        row["follow_ups_on_time"] += on_time
        row["complaints"] += complaints.get(cid, 0)
        row["_survey_scores"] += surveys.get(cid, [])
        row["_satisfaction_scores"] += satisfaction.get(cid, [])
        row["service_level_breaches"] += breaches.get(cid, 0)
        row["customers_with_breaches"] += cid in breaches
    for case in cases:
        if case.account_manager is None or (owner is not None and case.account_manager != owner):
            continue
        row = rows.setdefault(case.account_manager, _empty_row(case.account_manager))
        if start_at <= case.lost_at < end_at:
            row["customers_lost"] += 1
        if case.status == "won_back" and case.outcome_at is not None and start_at <= case.outcome_at < end_at:
            row["win_backs"] += 1
    return [_finish(row) for row in rows.values()]


def _empty_row(manager: str) -> dict:
    return {
        "account_manager": manager,
        "customers": 0,
        "customers_at_start": 0,
        "active_customers": 0,
        "revenue": Decimal(0),
        "revenue_previous": Decimal(0),
        "orders": 0,
        "customers_lost": 0,
        "win_backs": 0,
        "visits_done": 0,
        "visits_required": 0.0,
        "_visits_credited": 0.0,
        "follow_ups_due": 0,
        "follow_ups_on_time": 0,
        "complaints": 0,
        "_survey_scores": [],
        "_satisfaction_scores": [],
        "service_level_breaches": 0,
        "customers_with_breaches": 0,
    }


def _finish(row: dict) -> dict:
    scores = row.pop("_survey_scores")
    periodic = row.pop("_satisfaction_scores")
    credited = row.pop("_visits_credited")
    churn = _ratio(row["customers_lost"], row["customers_at_start"])
    return row | {
        "revenue": float(row["revenue"]),
        "revenue_previous": float(row["revenue_previous"]),
        "revenue_growth": _ratio(row["revenue"] - row["revenue_previous"], row["revenue_previous"]),
        "churn_rate": churn,
        "retention_rate": None if churn is None else round(1 - churn, 4),
        "visits_required": round(row["visits_required"], 2),
        "visit_attainment": _ratio(credited, row["visits_required"]),
        "follow_up_on_time_rate": _ratio(row["follow_ups_on_time"], row["follow_ups_due"]),
        "complaint_rate": _ratio(row["complaints"], row["orders"]),
        "post_complaint_surveys": len(scores),
        "post_complaint_satisfaction": round(sum(scores) / len(scores), 2) if scores else None,
        "satisfaction_surveys": len(periodic),
        "satisfaction": round(sum(periodic) / len(periodic), 2) if periodic else None,
    }


def rank(rows: list[dict], by: str) -> list[dict]:
    """Best first on `by` (RANKINGS says which way is better), ties share a rank; managers without a value come last, unranked."""
    higher_first = RANKINGS[by]
    valued = sorted((r for r in rows if r[by] is not None), key=lambda r: (-r[by] if higher_first else r[by], r["account_manager"]))
    ranked, place = [], 0
    for i, row in enumerate(valued, 1):
        place = place if ranked and row[by] == ranked[-1][by] else i  # equal values share a rank (1, 2, 2, 4)
        ranked.append(row | {"rank": place})
    return ranked + [r | {"rank": None} for r in sorted((r for r in rows if r[by] is None), key=lambda r: r["account_manager"])]
