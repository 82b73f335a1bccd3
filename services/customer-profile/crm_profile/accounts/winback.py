"""Win-back (流失客户挽回): a customer becoming lost opens a case for its account manager, the survey call records why
the customer left and what would bring it back, and the case ends won back or lost for good.

A customer becomes lost
* automatically: scoring announces P(alive) under `lost_p_alive_below` and the last order this service has seen
  (logistics.orders, the `account_orders` read model) is at least `lost_after_days` old; the status becomes `lost`;
* or explicitly: someone sets the status to `lost` (a terminated contract).
Either way one case opens (never a second while one is in progress), and CustomerUpdated (the status) and
CustomerLost (the case) are staged in the same transaction. The survey call goes to a neutral agent of the pool
(`winback_call_agents`, data), never the customer's own manager: the seeds want someone neutral to ask why the
customer left. An offer can be sent from the case (WinBackOfferMade; notifications word it in each contact's
language) and the customer's answer is recorded on it. Won back sets the status to `active` again; setting the
status to `active` by hand closes a case in progress as won back, so the case and the status never disagree.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import utcnow
from crm_common.events.customers import CustomerLost, WinBackOfferMade
from crm_common.events.logistics import OrderCancelled, OrderCreated
from crm_common.outbox import emit
from crm_profile import SERVICE_NAME
from crm_profile.accounts import messages
from crm_profile.accounts.models import AccountOrder, WinBackCallAgent, WinBackCase, WinBackOffer, WinBackReason
from crm_profile.accounts.service import BUSINESS_ZONE, Actor, Forbidden, WorkspaceError, portfolio_owner
from crm_profile.customers import publish as customer_events
from crm_profile.customers.models import Customer

IN_PROGRESS, WON_BACK, LOST_FOR_GOOD = "in_progress", "won_back", "lost_for_good"
LOST = "lost"
ACTIVE = "active"
CAN_BECOME_LOST = frozenset({"active", "dormant"})  # prospects never ordered; blacklisted and merged are not won back


class CaseNotFound(WorkspaceError):
    pass


class CaseClosed(WorkspaceError):
    pass


class BadPeriod(WorkspaceError):
    pass


class OfferNotFound(WorkspaceError):
    pass


class OfferAnswered(WorkspaceError):
    pass


class OfferExpired(WorkspaceError):
    pass


class InvalidCallAgents(WorkspaceError):
    def __init__(self, errors: list[dict]):
        super().__init__("invalid call agents")
        self.errors = errors


class UnknownReasons(WorkspaceError):
    def __init__(self, codes: list[str], known: list[str]):
        super().__init__(f"unknown reasons: {', '.join(codes)}")
        self.codes, self.known = codes, known


# --- events in: the orders read model ---------------------------------------------------------------


async def apply_order_created(session: AsyncSession, order: OrderCreated) -> None:
    row = await session.get(AccountOrder, order.order_id)
    if row is None:
        session.add(
            AccountOrder(
                order_id=order.order_id,
                customer_id=order.customer_id,
                order_date=order.order_date,
                amount=order.amount,
                currency=order.currency,
            )
        )
    else:  # a corrected announcement of the same order
        row.customer_id, row.order_date, row.amount, row.currency = order.customer_id, order.order_date, order.amount, order.currency


async def apply_order_cancelled(session: AsyncSession, cancelled: OrderCancelled) -> None:
    row = await session.get(AccountOrder, cancelled.order_id)
    if row is not None:
        row.cancelled_at = cancelled.cancelled_at


async def last_order_at(session: AsyncSession, customer_id: str) -> dt.datetime | None:
    return await session.scalar(
        select(func.max(AccountOrder.order_date)).where(AccountOrder.customer_id == customer_id, AccountOrder.cancelled_at.is_(None))
    )


# --- becoming lost ----------------------------------------------------------------------------------


async def open_case(
    session: AsyncSession, customer: Customer, *, cause: str, detail: tuple[str, dict[str, Any]], at: dt.datetime
) -> WinBackCase | None:
    """The customer is lost: open its case and announce it (None when a case is already in progress). `detail` is a
    message key with its parameters (messages.py); the English text is rendered from them."""
    if await session.scalar(select(WinBackCase.id).where(WinBackCase.customer_id == customer.id, WinBackCase.status == IN_PROGRESS)):
        return None
    case = WinBackCase(
        id=str(uuid.uuid4()),
        customer_id=customer.id,
        account_manager=customer.account_manager,
        cause=cause,
        detail=messages.english(*detail)[:500],
        detail_key=detail[0],
        detail_params=detail[1],
        lost_at=at,
        status=IN_PROGRESS,
        reasons=[],
        created_at=at,
    )
    session.add(case)
    await session.flush()
    await _assign_call(session, case, await call_agents(session))
    await emit(
        session,
        CustomerLost(
            customer_id=customer.id, case_id=case.id, account_manager=customer.account_manager, cause=cause, detail=case.detail, lost_at=at
        ),
        key=customer.id,
        producer=SERVICE_NAME,
    )
    return case


async def check_inactive(
    session: AsyncSession, customer_id: str, p_alive: float | None, as_of: dt.datetime, *, after_days: int, p_alive_below: float
) -> WinBackCase | None:
    """Called with each CustomerScored: mark the customer lost when the announcement and its orders say so."""
    if p_alive is None or p_alive >= p_alive_below:
        return None
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.status not in CAN_BECOME_LOST or customer.merged_into is not None:
        return None
    last = await last_order_at(session, customer_id)
    if last is None or (as_of - last).days < after_days:
        return None
    detail = (
        "winback.inactive",
        {
            "last_order": last.date().isoformat(),
            "days": (as_of - last).days,
            "p_alive": f"{p_alive:g}",
            "p_alive_below": f"{p_alive_below:g}",
        },
    )
    customer.status = LOST
    customer.updated_at = utcnow()
    await session.flush()
    await emit(session, customer_events.updated(customer, ["status"]), key=customer.id, producer=SERVICE_NAME)
    return await open_case(session, customer, cause="inactive", detail=detail, at=as_of)


async def status_changed(session: AsyncSession, customer: Customer, old_status: str | None) -> None:
    """A status set by hand: lost opens a case (a terminated customer); active again closes one in progress."""
    now = utcnow()
    if customer.status == LOST and old_status != LOST:
        await open_case(session, customer, cause="terminated", detail=("winback.terminated", {"old_status": old_status}), at=now)
    elif customer.status == ACTIVE and old_status == LOST:
        case = await session.scalar(select(WinBackCase).where(WinBackCase.customer_id == customer.id, WinBackCase.status == IN_PROGRESS))
        if case is not None:
            case.status, case.outcome_at, case.outcome_note = WON_BACK, now, case.outcome_note or "status set to active"


# --- the neutral survey call ------------------------------------------------------------------------


async def call_agents(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(WinBackCallAgent.agent_id).order_by(WinBackCallAgent.position))).all())


async def _open_calls(session: AsyncSession) -> Counter:
    """How many survey calls each agent has waiting (cases in progress not surveyed yet)."""
    rows = await session.execute(
        select(WinBackCase.call_agent, func.count())
        .where(WinBackCase.status == IN_PROGRESS, WinBackCase.surveyed_at.is_(None), WinBackCase.call_agent.is_not(None))
        .group_by(WinBackCase.call_agent)
    )
    return Counter(dict(rows.all()))


async def _assign_call(session: AsyncSession, case: WinBackCase, pool: list[str]) -> None:
    """The pool's agent with the fewest calls waiting (the pool's order breaks ties), never the case's own manager;
    nobody when the pool holds nobody neutral (the case waits for the next change of the pool)."""
    neutral = [agent for agent in pool if agent != case.account_manager]
    if not neutral:
        case.call_agent = case.call_assigned_at = None
        return
    waiting = await _open_calls(session)
    case.call_agent = min(neutral, key=lambda agent: (waiting[agent], neutral.index(agent)))
    case.call_assigned_at = utcnow()
    await session.flush()


async def set_call_agents(session: AsyncSession, agents: list[str]) -> list[str]:
    """Replace the pool; calls not made yet whose agent left the pool (or had none) are given to the new pool."""
    errors = [
        {"loc": ["body", "agents", i], "msg": f"{agent!r} is listed twice", "type": "value_error"}
        for i, agent in enumerate(agents)
        if agent in agents[:i]
    ]
    managers = set((await session.scalars(select(Customer.account_manager).where(Customer.account_manager.in_(agents)).distinct())).all())
    errors += [
        {"loc": ["body", "agents", i], "msg": f"{agent!r} manages customers: an account manager is not neutral", "type": "value_error"}
        for i, agent in enumerate(agents)
        if agent in managers
    ]
    if errors:
        raise InvalidCallAgents(errors)
    await session.execute(WinBackCallAgent.__table__.delete())
    session.add_all(WinBackCallAgent(agent_id=agent, position=i) for i, agent in enumerate(agents))
    await session.flush()
    pending = await session.scalars(
        select(WinBackCase)
        .where(WinBackCase.status == IN_PROGRESS, WinBackCase.surveyed_at.is_(None))
        .where((WinBackCase.call_agent.is_(None)) | (WinBackCase.call_agent.not_in(agents)))
        .order_by(WinBackCase.lost_at, WinBackCase.id)
    )
    for case in pending.all():
        await _assign_call(session, case, agents)
    return agents


def check_surveyor(case: WinBackCase, who: Actor) -> None:
    """The survey call is the assigned neutral agent's (any agent while none is assigned); an admin may record it too."""
    if who.role == "admin" or who.subject == case.call_agent or (case.call_agent is None and who.role == "agent"):
        return
    raise Forbidden(
        f"The lost-customer survey call is made by a neutral agent ({case.call_agent or 'not assigned yet'}), not the account manager."
    )


def offer_maker(who: Actor | None) -> str | None:
    """Offers are the account manager's (their own cases: the owner returned) or an admin's (None: any case)."""
    if who is not None and who.role == "agent":
        raise Forbidden("An offer is sent by the customer's account manager or an admin.")
    return portfolio_owner(who, None)


# --- the case: survey and outcome -------------------------------------------------------------------


async def list_reasons(session: AsyncSession) -> list[WinBackReason]:
    return list((await session.scalars(select(WinBackReason).order_by(WinBackReason.position))).all())


async def get_case(session: AsyncSession, case_id: str, owner: str | None) -> WinBackCase:
    case = await session.get(WinBackCase, case_id)
    if case is None or (owner is not None and case.account_manager != owner):
        raise CaseNotFound(case_id)  # another manager's case is not shown to exist
    return case


async def list_cases(
    session: AsyncSession,
    owner: str | None,
    status: str | None,
    *,
    limit: int,
    after: str | None = None,
    call_agent: str | None = None,
) -> list[WinBackCase]:
    query = select(WinBackCase).order_by(WinBackCase.lost_at.desc(), WinBackCase.id).limit(limit)
    if owner is not None:
        query = query.where(WinBackCase.account_manager == owner)
    if status is not None:
        query = query.where(WinBackCase.status == status)
    if call_agent is not None:
        query = query.where(WinBackCase.call_agent == call_agent)
    if after is not None:
        anchor = await session.get(WinBackCase, after)
        if anchor is not None:
            query = query.where(
                (WinBackCase.lost_at < anchor.lost_at) | ((WinBackCase.lost_at == anchor.lost_at) & (WinBackCase.id > anchor.id))
            )
    return list((await session.scalars(query)).all())


async def record_survey(
    session: AsyncSession, case: WinBackCase, *, reasons: list[str], reason_text: str | None, would_return_if: str | None, surveyed_by: str
) -> WinBackCase:
    if case.status != IN_PROGRESS:
        raise CaseClosed(f"The case ended {case.status}; its survey is kept as it was.")
    known = [reason.code for reason in await list_reasons(session)]
    unknown = [code for code in reasons if code not in known]
    if unknown:
        raise UnknownReasons(unknown, known)
    case.reasons = list(dict.fromkeys(reasons))
    case.reason_text, case.would_return_if = reason_text, would_return_if
    case.surveyed_at, case.surveyed_by = utcnow(), surveyed_by
    await session.flush()
    return case


async def record_outcome(session: AsyncSession, case: WinBackCase, *, outcome: str, note: str | None) -> WinBackCase:
    """won_back makes the customer active again (CustomerUpdated); lost_for_good leaves it lost."""
    if case.status != IN_PROGRESS:
        raise CaseClosed(f"The case already ended {case.status}.")
    case.status, case.outcome_at, case.outcome_note = outcome, utcnow(), note
    if outcome == WON_BACK:
        customer = await session.get(Customer, case.customer_id)
        if customer is not None and customer.status == LOST and customer.merged_into is None:
            customer.status = ACTIVE
            customer.updated_at = case.outcome_at
            await session.flush()
            await emit(session, customer_events.updated(customer, ["status"]), key=customer.id, producer=SERVICE_NAME)
    await session.flush()
    return case


# --- offers ----------------------------------------------------------------------------------------

MAX_OFFER_DAYS = 366  # an offer is valid from today (Asia/Shanghai) for at most a year


async def offers_of(session: AsyncSession, case_ids: list[str]) -> dict[str, list[WinBackOffer]]:
    if not case_ids:
        return {}
    rows = await session.scalars(
        select(WinBackOffer).where(WinBackOffer.case_id.in_(case_ids)).order_by(WinBackOffer.made_at, WinBackOffer.id)
    )
    offers: dict[str, list[WinBackOffer]] = {}
    for offer in rows.all():
        offers.setdefault(offer.case_id, []).append(offer)
    return offers


async def send_offer(
    session: AsyncSession,
    case: WinBackCase,
    *,
    summary: str,
    discount_percent: int | None,
    valid_until: dt.date,
    made_by: str,
    today: dt.date,
) -> WinBackOffer:
    """Record the offer on the case and stage WinBackOfferMade for notifications, in one transaction."""
    if case.status != IN_PROGRESS:
        raise CaseClosed(f"The case ended {case.status}; no offer is sent any more.")
    if not today <= valid_until <= today + dt.timedelta(days=MAX_OFFER_DAYS):
        raise OfferExpired(f"valid_until must be between {today} and {today + dt.timedelta(days=MAX_OFFER_DAYS)}")
    offer = WinBackOffer(
        id=str(uuid.uuid4()),
        case_id=case.id,
        customer_id=case.customer_id,
        summary=summary,
        discount_percent=discount_percent,
        valid_until=valid_until,
        made_by=made_by,
        made_at=utcnow(),
    )
    session.add(offer)
    await session.flush()
    await emit(
        session,
        WinBackOfferMade(
            customer_id=case.customer_id,
            case_id=case.id,
            offer_id=offer.id,
            account_manager=case.account_manager,
            made_by=made_by,
            summary=summary,
            discount_percent=discount_percent,
            valid_until=valid_until,
            made_at=offer.made_at,
        ),
        key=case.customer_id,
        producer=SERVICE_NAME,
    )
    return offer


async def record_offer_response(
    session: AsyncSession, case: WinBackCase, offer_id: str, *, response: str, note: str | None
) -> WinBackOffer:
    offer = await session.get(WinBackOffer, offer_id)
    if offer is None or offer.case_id != case.id:
        raise OfferNotFound(offer_id)
    if offer.response is not None:
        raise OfferAnswered(f"The offer was {offer.response} already.")
    offer.response, offer.response_note, offer.responded_at = response, note, utcnow()
    await session.flush()
    return offer


# --- the report -------------------------------------------------------------------------------------


MAX_REPORT_MONTHS = 120


def month_of_day(day: dt.date) -> str:
    return day.strftime("%Y-%m")


def months_between(since: str, until: str) -> int:
    (y1, m1), (y2, m2) = map(int, since.split("-")), map(int, until.split("-"))
    return (y2 - y1) * 12 + m2 - m1 + 1


def month_of(at: dt.datetime) -> str:
    return at.astimezone(BUSINESS_ZONE).strftime("%Y-%m")


def month_start(month: str) -> dt.datetime:
    year, number = map(int, month.split("-"))
    return dt.datetime(year, number, 1, tzinfo=BUSINESS_ZONE)


def next_month(month: str) -> str:
    year, number = map(int, month.split("-"))
    return f"{year + number // 12}-{number % 12 + 1:02d}"


async def report(session: AsyncSession, owner: str | None, since: str, until: str) -> list[dict]:
    """Per month of loss (Asia/Shanghai) from `since` to `until` inclusive: cases opened, won back, lost for good, still
    in progress, the win-back rate (won back / opened) and the reasons recorded."""
    query = select(WinBackCase).where(WinBackCase.lost_at >= month_start(since), WinBackCase.lost_at < month_start(next_month(until)))
    if owner is not None:
        query = query.where(WinBackCase.account_manager == owner)
    cases = (await session.scalars(query)).all()
    months = []
    month = since
    while month <= until:
        months.append(month)
        month = next_month(month)
    rows = {
        m: {"month": m, "opened": 0, WON_BACK: 0, LOST_FOR_GOOD: 0, IN_PROGRESS: 0, "surveyed": 0, "offers_sent": 0, "offers_accepted": 0}
        | {"reasons": Counter()}
        for m in months
    }
    offers = await offers_of(session, [case.id for case in cases])
    for case in cases:
        row = rows[month_of(case.lost_at)]
        row["opened"] += 1
        row[case.status] += 1
        row["surveyed"] += case.surveyed_at is not None
        row["reasons"].update(case.reasons or [])
        row["offers_sent"] += len(offers.get(case.id, []))
        row["offers_accepted"] += sum(offer.response == "accepted" for offer in offers.get(case.id, []))
    for row in rows.values():
        row["win_back_rate"] = round(row[WON_BACK] / row["opened"], 4) if row["opened"] else None
        row["reasons"] = dict(row["reasons"].most_common())
    return [rows[m] for m in months]


def report_csv(rows: list[dict], reason_codes: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "month",
            "opened",
            WON_BACK,
            LOST_FOR_GOOD,
            IN_PROGRESS,
            "surveyed",
            "win_back_rate",
            *(f"reason_{c}" for c in reason_codes),
            "offers_sent",
            "offers_accepted",
        ]
    )
    for row in rows:
        rate = "" if row["win_back_rate"] is None else f"{row['win_back_rate']:.4f}"
        writer.writerow(
            [
                row["month"],
                row["opened"],
                row[WON_BACK],
                row[LOST_FOR_GOOD],
                row[IN_PROGRESS],
                row["surveyed"],
                rate,
                *(row["reasons"].get(c, 0) for c in reason_codes),
                row["offers_sent"],
                row["offers_accepted"],
            ]
        )
    return out.getvalue()
