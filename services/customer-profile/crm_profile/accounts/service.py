"""The account manager's workspace: the portfolio, the worklist (follow-ups, visits by quota, credit reviews) and
the visit quotas. Scoring's view of a customer comes from crm.scoring events (handlers.py), never its tables.

Rules (docs/customer-profile.md, "Account manager's workspace"):
* a follow-up is due when the customer's latest interaction names a `next_follow_up`; any later interaction
  (the follow-up itself) replaces it;
* a visit quota is paced: with `visits` per period, the (n+1)-th visit is due by period start + (n+1) x period / visits;
* a lost customer's survey call (win-back) is due the day the customer was lost, until the case records a survey; it is
  in the worklist of the neutral agent the case gives it to, not the customer's manager's;
* a credit review is due `review_every_days` after the last `credit_review` interaction (or after the grade changed),
  and at once when the grade's policy asked for a review after the last one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_common.db import utcnow
from crm_common.events.scoring import CreditGradeChanged, CustomerScored
from crm_profile.accounts import messages
from crm_profile.accounts.models import AccountScore, VisitQuota, WinBackCase
from crm_profile.accounts.schemas import PortfolioItem, QuotaIn, WorkItem
from crm_profile.customers.models import MERGED, Customer, Interaction

KEY_ACCOUNT_BAND = "key_account"  # the profile's manual key-account flag
BUSINESS_ZONE = ZoneInfo("Asia/Shanghai")  # whose calendar decides today, the periods and what is due
FOLLOW_UP_LOOKAHEAD_DAYS = 7  # the worklist shows what is due within a week, and everything overdue
STAFF_ROLES = frozenset({"agent", "admin"})  # see every portfolio


class WorkspaceError(Exception):
    """Base of the workspace's domain errors (mapped to problem details once, in api.py)."""


class ActorRequired(WorkspaceError):
    pass


class Forbidden(WorkspaceError):
    pass


class InvalidQuotas(WorkspaceError):
    def __init__(self, errors: list[dict]):
        super().__init__("invalid visit quotas")
        self.errors = errors


@dataclass(frozen=True)
class Actor:
    subject: str
    role: str


def portfolio_owner(actor: Actor | None, requested: str | None) -> str | None:
    """Whose portfolio the actor may read: an account manager only their own; staff anyone's (None: everyone's)."""
    if actor is None:
        raise ActorRequired()
    if actor.role == "account_manager":
        if requested not in (None, actor.subject):
            raise Forbidden("An account manager sees only their own portfolio.")
        return actor.subject
    if actor.role in STAFF_ROLES:
        return requested
    raise Forbidden("The workspace is for account managers and staff.")


def check_quota_editor(actor: Actor | None) -> None:
    if actor is None:
        raise ActorRequired()
    if actor.role != "admin":
        raise Forbidden("Only an admin changes the visit quotas.")


# --- events in ------------------------------------------------------------------------------------


async def _score_row(session: AsyncSession, customer_id: str) -> AccountScore:
    row = await session.get(AccountScore, customer_id)
    if row is None:
        row = AccountScore(customer_id=customer_id)
        session.add(row)
    return row


async def apply_scored(session: AsyncSession, scored: CustomerScored) -> None:
    """The latest announcement wins (per customer the events arrive in order; an older one is ignored)."""
    row = await _score_row(session, scored.customer_id)
    if row.scored_at is not None and row.scored_at > scored.scored_at:
        return
    row.abc_class, row.tier, row.credit_grade = scored.abc_class, scored.tier, scored.credit_grade
    row.churn_risk = getattr(scored, "churn_risk", None) or row.churn_risk  # version 1 carries no risk level
    row.current_value = scored.scores.get("current_value")
    row.potential_value = scored.scores.get("potential_value")
    row.p_alive = scored.scores.get("p_alive")
    row.scored_at = scored.scored_at
    row.updated_at = utcnow()


async def apply_credit_grade_changed(session: AsyncSession, changed: CreditGradeChanged) -> None:
    row = await _score_row(session, changed.customer_id)
    if row.credit_changed_at is not None and row.credit_changed_at > changed.changed_at:
        return
    row.credit_grade = changed.new_grade
    row.credit_review_every_days = changed.review_every_days
    row.credit_changed_at = changed.changed_at
    if "credit_review_task" in changed.actions:
        row.credit_review_requested_at = changed.changed_at
    row.updated_at = utcnow()


# --- visit quotas ---------------------------------------------------------------------------------


async def list_quotas(session: AsyncSession) -> list[VisitQuota]:
    return list((await session.scalars(select(VisitQuota).order_by(VisitQuota.applies_to, VisitQuota.value))).all())


async def replace_quotas(session: AsyncSession, quotas: list[QuotaIn]) -> list[VisitQuota]:
    seen: set[tuple[str, str]] = set()
    errors = []
    for i, quota in enumerate(quotas):
        target = (quota.applies_to, quota.value)
        if target in seen:
            errors.append(
                {"loc": ["body", i, "value"], "msg": f"a second quota for {quota.applies_to} {quota.value}", "type": "value_error"}
            )
        seen.add(target)
    if errors:
        raise InvalidQuotas(errors)
    await session.execute(delete(VisitQuota))
    session.add_all(VisitQuota(**q.model_dump()) for q in quotas)
    await session.flush()
    return await list_quotas(session)


def period_bounds(period: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """[start, end) of the calendar month or quarter holding `today`."""
    first_month = today.month if period == "month" else 3 * ((today.month - 1) // 3) + 1
    start = dt.date(today.year, first_month, 1)
    months = 1 if period == "month" else 3
    end_month = first_month + months
    end = dt.date(today.year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1)
    return start, end


def applicable_quota(quotas: list[VisitQuota], abc_class: str | None, tier: str | None) -> VisitQuota | None:
    """Of the quotas matching the customer's class or tier, the most demanding (most visits per day)."""
    matching = [q for q in quotas if (q.applies_to, q.value) in (("abc_class", abc_class), ("tier", tier))]
    return max(matching, key=lambda q: q.visits / (31 if q.period == "month" else 92), default=None)


def next_visit_due(quota: VisitQuota, visits_done: int, today: dt.date) -> dt.date | None:
    """When the next visit is due to keep pace with the quota; None when the period's quota is met."""
    if visits_done >= quota.visits:
        return None
    start, end = period_bounds(quota.period, today)
    return start + dt.timedelta(days=(end - start).days * (visits_done + 1) // quota.visits - 1)


# --- portfolio and worklist -----------------------------------------------------------------------


def _portfolio_filter(owner: str | None):
    live = and_(Customer.merged_into.is_(None), Customer.status != MERGED)
    return and_(live, Customer.account_manager == owner) if owner is not None else and_(live, Customer.account_manager.is_not(None))


def key_account_reasons(abc_class: str | None, size_band: str | None) -> list[str]:
    reasons = []
    if abc_class == "A":
        reasons.append("class A")
    if size_band == KEY_ACCOUNT_BAND:
        reasons.append("flagged by hand")
    return reasons


async def _recent_visits(session: AsyncSession, customer_ids: list[str], today: dt.date) -> dict[str, list[dt.datetime]]:
    """When each customer was visited since the start of the current quarter (which holds any current month)."""
    if not customer_ids:
        return {}
    quarter_start, _ = period_bounds("quarter", today)
    since = dt.datetime.combine(quarter_start, dt.time(), BUSINESS_ZONE)
    rows = await session.execute(
        select(Interaction.customer_id, Interaction.occurred_at).where(
            Interaction.customer_id.in_(customer_ids), Interaction.kind == "visit", Interaction.occurred_at >= since
        )
    )
    visits: dict[str, list[dt.datetime]] = {}
    for customer_id, at in rows.all():
        visits.setdefault(customer_id, []).append(at)
    return visits


async def _latest_interactions(session: AsyncSession, customer_ids: list[str]) -> dict[str, Interaction]:
    """Each customer's latest interaction (the one whose next_follow_up is current)."""
    if not customer_ids:
        return {}
    later = aliased(Interaction)
    newer = exists().where(
        later.customer_id == Interaction.customer_id,
        or_(later.occurred_at > Interaction.occurred_at, and_(later.occurred_at == Interaction.occurred_at, later.id > Interaction.id)),
    )
    rows = await session.scalars(select(Interaction).where(Interaction.customer_id.in_(customer_ids), ~newer))
    return {row.customer_id: row for row in rows}


async def _last_credit_reviews(session: AsyncSession, customer_ids: list[str]) -> dict[str, dt.datetime]:
    if not customer_ids:
        return {}
    rows = await session.execute(
        select(Interaction.customer_id, func.max(Interaction.occurred_at))
        .where(Interaction.customer_id.in_(customer_ids), Interaction.kind == "credit_review")
        .group_by(Interaction.customer_id)
    )
    return dict(rows.all())


async def _portfolio_rows(session: AsyncSession, owner: str | None, limit: int, after: str | None):
    query = (
        select(Customer, AccountScore)
        .outerjoin(AccountScore, AccountScore.customer_id == Customer.id)
        .where(_portfolio_filter(owner))
        .order_by(Customer.id)
        .limit(limit)
    )
    if after:
        query = query.where(Customer.id > after)
    return (await session.execute(query)).all()


async def portfolio(
    session: AsyncSession, owner: str | None, today: dt.date, *, limit: int, after: str | None = None
) -> list[PortfolioItem]:
    rows = await _portfolio_rows(session, owner, limit, after)
    ids = [customer.id for customer, _ in rows]
    quotas = await list_quotas(session)
    latest = await _latest_interactions(session, ids)
    visits = await _recent_visits(session, ids, today)
    items = []
    for customer, score in rows:
        score = score or AccountScore(customer_id=customer.id)
        quota = applicable_quota(quotas, score.abc_class, score.tier)
        done = _visits_in_period(visits.get(customer.id, []), quota, today) if quota else None
        last = latest.get(customer.id)
        reasons = key_account_reasons(score.abc_class, customer.size_band)
        items.append(
            PortfolioItem(
                customer_id=customer.id,
                name=customer.name,
                status=customer.status,
                account_manager=customer.account_manager,
                relationship_level=customer.relationship_level,
                key_account=bool(reasons),
                key_account_reasons=reasons,
                abc_class=score.abc_class,
                tier=score.tier,
                credit_grade=score.credit_grade,
                churn_risk=score.churn_risk,
                current_value=score.current_value,
                potential_value=score.potential_value,
                p_alive=score.p_alive,
                scored_at=score.scored_at,
                share_of_wallet=_float(customer.share_of_wallet),
                potential_volume=_float(customer.potential_volume),
                last_contact_at=last.occurred_at if last else None,
                next_follow_up=last.next_follow_up if last else None,
                visits_done=done,
                visits_required=quota.visits if quota else None,
                visit_period=quota.period if quota else None,
            )
        )
    return items


def _visits_in_period(visit_times: list[dt.datetime], quota: VisitQuota, today: dt.date) -> int:
    start, end = period_bounds(quota.period, today)
    return sum(1 for at in visit_times if start <= at.astimezone(BUSINESS_ZONE).date() < end)


def _float(value) -> float | None:
    return None if value is None else float(value)


async def worklist(session: AsyncSession, owner: str | None, today: dt.date, *, limit: int) -> list[WorkItem]:
    """Everything due within FOLLOW_UP_LOOKAHEAD_DAYS (and everything overdue), earliest first."""
    horizon = today + dt.timedelta(days=FOLLOW_UP_LOOKAHEAD_DAYS)
    rows = (
        await session.execute(
            select(Customer.id, Customer.name, AccountScore)
            .outerjoin(AccountScore, AccountScore.customer_id == Customer.id)
            .where(_portfolio_filter(owner))
        )
    ).all()
    ids = [customer_id for customer_id, _, _ in rows]
    names = {customer_id: name for customer_id, name, _ in rows}
    items = _follow_ups(await _latest_interactions(session, ids), names, today, horizon)
    items += _visits_due(rows, await list_quotas(session), await _recent_visits(session, ids, today), today, horizon)
    items += _credit_reviews(rows, await _last_credit_reviews(session, ids), today, horizon)
    items += await _win_back_calls(session, owner, today)
    items += await _satisfaction_surveys(session, owner, today, horizon)
    items.sort(key=lambda item: (item.due, item.kind, item.customer_id))
    return items[:limit]


def _item(kind: str, customer_id: str, name: str, due: dt.date, today: dt.date, detail: tuple[str, dict[str, Any]], **extra) -> WorkItem:
    """`detail` is a message key with its parameters (messages.py); the English text is rendered from them."""
    key, params = detail
    return WorkItem(
        kind=kind,
        customer_id=customer_id,
        customer_name=name,
        due=due,
        overdue=due < today,
        detail=messages.english(key, params),
        detail_key=key,
        detail_params=params,
        **extra,
    )


def _follow_ups(latest: dict[str, Interaction], names: dict[str, str], today: dt.date, horizon: dt.date) -> list[WorkItem]:
    return [
        _item(
            "follow_up",
            cid,
            names[cid],
            row.next_follow_up,
            today,
            ("work.follow_up_next_step", {"text": row.next_step})
            if row.next_step
            else ("work.follow_up", {"interaction_kind": row.kind, "date": row.occurred_at.date().isoformat()}),
            interaction_id=row.id,
        )
        for cid, row in latest.items()
        if row.next_follow_up is not None and row.next_follow_up <= horizon
    ]


def _visits_due(rows, quotas: list[VisitQuota], visits: dict, today: dt.date, horizon: dt.date) -> list[WorkItem]:
    items = []
    for customer_id, name, score in rows:
        quota = applicable_quota(quotas, score.abc_class, score.tier) if score else None
        if quota is None:
            continue
        done = _visits_in_period(visits.get(customer_id, []), quota, today)
        due = next_visit_due(quota, done, today)
        if due is not None and due <= horizon:
            items.append(
                _item(
                    "visit",
                    customer_id,
                    name,
                    due,
                    today,
                    ("work.visit", {"done": done, "required": quota.visits, "period": quota.period}),
                )
            )
    return items


def _credit_reviews(rows, last_reviews: dict[str, dt.datetime], today: dt.date, horizon: dt.date) -> list[WorkItem]:
    items = []
    for customer_id, name, score in rows:
        if score is None or score.credit_review_every_days is None:
            continue
        last = last_reviews.get(customer_id)
        requested = score.credit_review_requested_at
        if requested is not None and (last is None or last < requested):
            due, why = requested.date(), ("work.credit_review_now", {"grade": score.credit_grade})
        else:
            base = last or score.credit_changed_at
            due, why = (
                base.date() + dt.timedelta(days=score.credit_review_every_days),
                ("work.credit_review_every", {"grade": score.credit_grade, "days": score.credit_review_every_days}),
            )
        if due <= horizon:
            items.append(_item("credit_review", customer_id, name, due, today, why))
    return items


async def _win_back_calls(session: AsyncSession, owner: str | None, today: dt.date) -> list[WorkItem]:
    """The survey call of each win-back case in progress that has none yet. It is the neutral agent's (the case's
    `call_agent`, never the customer's manager): `owner` gets the calls given to them; staff's view shows every call."""
    query = (
        select(WinBackCase, Customer.name)
        .join(Customer, Customer.id == WinBackCase.customer_id)
        .where(WinBackCase.status == "in_progress", WinBackCase.surveyed_at.is_(None))
    )
    if owner is not None:
        query = query.where(WinBackCase.call_agent == owner)
    return [
        _item(
            "win_back_call",
            case.customer_id,
            name,
            case.lost_at.astimezone(BUSINESS_ZONE).date(),
            today,
            ("work.win_back_call", _case_detail(case)),
            case_id=case.id,
            call_agent=case.call_agent,
        )
        for case, name in (await session.execute(query)).all()
    ]


def _case_detail(case: WinBackCase) -> dict[str, Any]:
    """The call's parameters: the case's English detail, and its own key and parameters when it has them (cases opened
    before migration 0016 have none) so that a reader can translate the nested message too."""
    params: dict[str, Any] = {"case_detail": case.detail}
    if case.detail_key is not None:
        params |= {"case_detail_key": case.detail_key, "case_detail_params": case.detail_params or {}}
    return params


async def _satisfaction_surveys(session: AsyncSession, owner: str | None, today: dt.date, horizon: dt.date) -> list[WorkItem]:
    """The quarter's satisfaction survey of each key account (class A or flagged by hand) that has not answered it."""
    from crm_profile.accounts import surveys  # surveys.py builds on this module

    due = surveys.survey_due(today)
    if due > horizon:
        return []
    rows = (
        await session.execute(
            select(Customer.id, Customer.name)
            .outerjoin(AccountScore, AccountScore.customer_id == Customer.id)
            .where(_portfolio_filter(owner), or_(AccountScore.abc_class == "A", Customer.size_band == KEY_ACCOUNT_BAND))
        )
    ).all()
    answered = await surveys.surveyed_this_quarter(session, [cid for cid, _ in rows], today)
    quarter = surveys.quarter_label(today)
    return [
        _item("satisfaction_survey", cid, name, due, today, ("work.satisfaction_survey", {"quarter": quarter}))
        for cid, name in rows
        if cid not in answered
    ]
