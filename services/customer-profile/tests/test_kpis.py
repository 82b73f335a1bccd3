"""KPIs per account manager and period (both databases): every KPI from a known portfolio, the ranking, and who may
see what."""

import datetime as dt
import uuid
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import update

from crm_common.events.complaints import ComplaintFiled, SurveyAnswered
from crm_common.events.logistics import OrderCancelled, OrderCreated
from crm_common.events.scoring import CustomerScoredV2, MissedTarget, ServiceLevelBreached
from crm_profile.accounts.api import today
from crm_profile.accounts.handlers import AccountComplaintsHandler, AccountOrdersHandler, AccountScoresHandler
from crm_profile.accounts.models import WinBackCase
from profile_support import full_body

TODAY = dt.date(2026, 12, 20)
LONG_AGO = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def as_actor(subject: str, role: str) -> dict:
    return {"X-Actor-Id": subject, "X-Actor-Role": role}


async def _deliver(profile, handler, payload) -> None:
    async with profile.runtime.transaction() as session:
        await handler.handle(session, SimpleNamespace(envelope=SimpleNamespace(type=payload.event_type), payload=payload))


async def _customers(profile, manager: str, n: int, first_order_date: str | None = "2025-03-01", **fields) -> list[str]:
    """Customers since their first order (a customer at a period's start when it ordered before it)."""
    ids = []
    for _ in range(n):
        response = await profile.client.post(
            "/customers", json=full_body(account_manager=manager, first_order_date=first_order_date, **fields)
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def _order(customer_id: str, day: str, amount: str) -> OrderCreated:
    return OrderCreated(
        order_id=f"o-{uuid.uuid4().hex[:10]}", customer_id=customer_id, order_date=f"{day}T10:00:00+08:00", amount=Decimal(amount)
    )


async def _log(profile, customer_id: str, kind: str, day: str, **fields) -> None:
    body = {"kind": kind, "channel": "phone", "author": "am", "occurred_at": f"{day}T10:00:00+08:00", "summary": "talked", **fields}
    response = await profile.client.post(f"/customers/{customer_id}/interactions", json=body)
    assert response.status_code == 201, response.text


async def test_kpis_of_a_known_portfolio_and_the_ranking(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: TODAY
    a, b = f"am-a-{uuid.uuid4().hex[:6]}", f"am-b-{uuid.uuid4().hex[:6]}"
    c1, c2, c3 = await _customers(profile, a, 3)
    [newcomer] = await _customers(profile, a, 1, first_order_date=None)  # its first order is in the period: not at the start
    await _customers(profile, a, 1, status="lost")  # lost before win-back cases: not a customer at the start either
    [d1] = await _customers(profile, b, 1)
    orders, complaints = AccountOrdersHandler(), AccountComplaintsHandler()
    await _deliver(
        profile,
        AccountScoresHandler(),
        CustomerScoredV2(customer_id=c1, abc_class="A", tier="key_account", churn_risk="low", scores={"p_alive": 90.0}, scored_at=LONG_AGO),
    )
    for payload in (
        _order(c1, "2026-12-03", "1000"),
        _order(c1, "2026-11-10", "500"),
        _order(c2, "2026-12-05", "2000"),
        _order(d1, "2026-12-02", "5000"),
        _order(newcomer, "2026-12-01", "10"),
    ):
        await _deliver(profile, orders, payload)
    cancelled = _order(c2, "2026-12-06", "300")
    await _deliver(profile, orders, cancelled)
    await _deliver(profile, orders, OrderCancelled(order_id=cancelled.order_id, customer_id=c2, cancelled_at="2026-12-06T12:00:00+08:00"))

    await _log(profile, c1, "visit", "2026-12-02", channel="in_person")
    await _log(profile, c1, "visit", "2026-12-10", channel="in_person")  # 2 visits; the quarter's 3 make 1 a month
    await _log(profile, c2, "call", "2026-12-01", next_follow_up="2026-12-05")
    await _log(profile, c2, "call", "2026-12-04")  # on time
    await _log(profile, c3, "call", "2026-12-02", next_follow_up="2026-12-08")
    await _log(profile, c3, "call", "2026-12-12", next_follow_up="2026-12-30")  # late; and the next one is not due yet

    filed = ComplaintFiled(
        complaint_id=f"k-{uuid.uuid4().hex[:8]}",
        complaint_number="CP-1",
        customer_id=c1,
        category="delay",
        priority="P3",
        channel="web",
        filed_at="2026-12-03T09:00:00+08:00",
    )
    await _deliver(profile, complaints, filed)
    await _deliver(
        profile,
        complaints,
        SurveyAnswered(complaint_id=filed.complaint_id, customer_id=c1, score=4, answered_at="2026-12-04T09:00:00+08:00"),
    )
    await _deliver(
        profile,
        complaints,
        SurveyAnswered(complaint_id=f"k-{uuid.uuid4().hex[:8]}", customer_id=c2, score=2, answered_at="2026-12-01T09:00:00+08:00"),
    )  # filed in November
    for month in ("2026-11", "2026-12"):
        await _deliver(
            profile,
            AccountScoresHandler(),
            ServiceLevelBreached(
                customer_id=c3,
                month=month,
                missed=[MissedTarget(measure="on_time_delivery", target=0.95, actual=0.9)],
                summary="on-time 90% < 95%",
                detected_at="2026-12-01T00:00:00+00:00",
            ),
        )

    lost = await profile.client.patch(f"/customers/{c3}", json={"status": "lost"}, headers={"If-Match": "*"})
    assert lost.status_code == 200, lost.text
    [case] = (await profile.client.get("/account-manager/win-back-cases", headers=as_actor(a, "account_manager"))).json()["items"]
    assert (
        await profile.client.post(
            f"/account-manager/win-back-cases/{case['id']}/outcome", headers=as_actor(a, "account_manager"), json={"outcome": "won_back"}
        )
    ).status_code == 200
    async with profile.runtime.transaction() as session:  # the case is dated by the real clock: pin it in the period
        await session.execute(
            update(WinBackCase)
            .where(WinBackCase.id == case["id"])
            .values(lost_at=dt.datetime(2026, 12, 7, tzinfo=dt.UTC), outcome_at=dt.datetime(2026, 12, 9, tzinfo=dt.UTC))
        )

    boss = as_actor("boss", "admin")
    report = await profile.client.get("/account-manager/kpis", params={"period": "2026-12"}, headers=boss)
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["start"], body["end"], body["previous_period"], body["sort"]) == ("2026-12-01", "2027-01-01", "2026-11", "revenue")
    rows = {row["account_manager"]: row for row in body["items"]}
    mine = rows[a]
    assert {
        k: mine[k]
        for k in ("customers", "customers_at_start", "active_customers", "orders", "revenue", "revenue_previous", "revenue_growth")
    } == {
        "customers": 5,
        "customers_at_start": 3,
        "active_customers": 3,
        "orders": 3,
        "revenue": 3010.0,
        "revenue_previous": 500.0,
        "revenue_growth": 5.02,
    }
    assert (mine["customers_lost"], mine["churn_rate"], mine["retention_rate"], mine["win_backs"]) == (1, 0.3333, 0.6667, 1)
    assert (mine["visits_done"], mine["visits_required"], mine["visit_attainment"]) == (2, 1.0, 1.0)
    assert (mine["follow_ups_due"], mine["follow_ups_on_time"], mine["follow_up_on_time_rate"]) == (2, 1, 0.5)
    assert (mine["complaints"], mine["complaint_rate"], mine["post_complaint_surveys"], mine["post_complaint_satisfaction"]) == (
        1,
        0.3333,
        2,
        3.0,
    )
    assert (mine["service_level_breaches"], mine["customers_with_breaches"]) == (1, 1)
    assert rows[b]["revenue"] == 5000.0 and rows[b]["complaint_rate"] == 0.0 and rows[b]["churn_rate"] == 0.0
    assert rows[b]["rank"] < mine["rank"]  # revenue: more first

    by_complaints = {
        r["account_manager"]: r["rank"]
        for r in (
            await profile.client.get("/account-manager/kpis", params={"period": "2026-12", "sort": "complaint_rate"}, headers=boss)
        ).json()["items"]
    }
    assert by_complaints[b] < by_complaints[a]  # fewer complaints per order first
    quarter = (await profile.client.get("/account-manager/kpis", params={"period": "2026-Q4", "account_manager": a}, headers=boss)).json()
    [q] = quarter["items"]
    assert (q["revenue"], q["visits_required"], q["service_level_breaches"], quarter["previous_period"]) == (3510.0, 3.0, 2, "2026-Q3")

    own = await profile.client.get("/account-manager/kpis", params={"period": "2026-12"}, headers=as_actor(a, "account_manager"))
    assert [(r["account_manager"], r["rank"]) for r in own.json()["items"]] == [(a, mine["rank"])]  # their own row, their place
    assert (
        await profile.client.get(
            "/account-manager/kpis", params={"period": "2026-12", "account_manager": b}, headers=as_actor(a, "account_manager")
        )
    ).status_code == 403


async def test_kpis_refuse_bad_periods_and_sorts(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: TODAY
    boss = as_actor("boss", "admin")
    for period in ("2026-13", "2026-Q5", "26-12", "2027-01", "1999-12", "0000-01", "0000-Q1", "2026-12\x00"):
        response = await profile.client.get("/account-manager/kpis", params={"period": period}, headers=boss)
        assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json"), period
    assert (
        await profile.client.get("/account-manager/kpis", params={"period": "2026-12", "sort": "height"}, headers=boss)
    ).status_code == 422
    assert (await profile.client.get("/account-manager/kpis", headers=boss)).status_code == 422
    assert (
        await profile.client.get("/account-manager/kpis", params={"period": "2026-12"}, headers=as_actor("c", "customer"))
    ).status_code == 403
    assert (await profile.client.get("/account-manager/kpis", params={"period": "2026-12"})).status_code == 401
