"""Key-account monthly service reports (both databases): what a report holds, once per month whatever runs it, who
may read it (the customer only once opted in), the downloads, the event, and bad input."""

import asyncio
import csv
import datetime as dt
import io
import uuid

import pytest
from sqlalchemy import func, select

from crm_common.events.complaints import ComplaintFiled, SurveyAnswered
from crm_common.events.scoring import CustomerScoredV2, MissedTarget, ServiceLevelBreached
from crm_profile.accounts import reports
from crm_profile.accounts.api import today
from crm_profile.accounts.handlers import AccountComplaintsHandler, AccountOrdersHandler, AccountScoresHandler
from crm_profile.accounts.models import KeyAccountReport, KeyAccountReportRun
from profile_support import outbox_events
from test_kpis import _customers, _deliver, _log, _order, as_actor

BOSS = as_actor("boss", "admin")
SCORED_AT = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


async def _class(profile, customer_id: str, abc_class: str) -> None:
    await _deliver(
        profile,
        AccountScoresHandler(),
        CustomerScoredV2(
            customer_id=customer_id, abc_class=abc_class, tier="ordinary", churn_risk="low", scores={"p_alive": 90.0}, scored_at=SCORED_AT
        ),
    )


async def _ready_events(profile, customer_ids: set[str]) -> list:
    events = []
    for customer_id in sorted(customer_ids):
        events += [e.payload for e in await outbox_events(profile.db, key=customer_id, type_="KeyAccountReportReady")]
    return events


async def test_a_month_of_key_accounts_is_reported_once_with_its_facts(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: dt.date(2024, 4, 15)
    am = f"am-{uuid.uuid4().hex[:6]}"
    class_a, flagged, ordinary = await _customers(profile, am, 3)
    await _class(profile, class_a, "A")
    await _class(profile, ordinary, "B")
    assert (
        await profile.client.patch(f"/customers/{flagged}", json={"size_band": "key_account"}, headers={"If-Match": "*"})
    ).status_code == 200
    orders = AccountOrdersHandler()
    for payload in (
        _order(class_a, "2024-03-02", "1000"),
        _order(class_a, "2024-03-30", "500"),
        _order(class_a, "2024-02-10", "300"),
        _order(class_a, "2024-04-01", "9999"),
        _order(ordinary, "2024-03-05", "100"),
    ):
        await _deliver(profile, orders, payload)
    await _deliver(
        profile,
        AccountScoresHandler(),
        ServiceLevelBreached(
            customer_id=class_a,
            month="2024-03",
            missed=[MissedTarget(measure="on_time_delivery", target=0.95, actual=0.9)],
            summary="on-time 90% < 95%",
            detected_at="2024-04-01T00:00:00+00:00",
        ),
    )
    filed = ComplaintFiled(
        complaint_id=f"k-{uuid.uuid4().hex[:8]}",
        complaint_number="CP-9",
        customer_id=class_a,
        category="delay",
        priority="P3",
        channel="web",
        filed_at="2024-03-03T09:00:00+08:00",
    )
    await _deliver(profile, AccountComplaintsHandler(), filed)
    await _deliver(
        profile,
        AccountComplaintsHandler(),
        SurveyAnswered(complaint_id=filed.complaint_id, customer_id=class_a, score=4, answered_at="2024-03-05T09:00:00+08:00"),
    )
    await _log(profile, class_a, "visit", "2024-03-12", channel="in_person")
    await _log(profile, class_a, "visit", "2024-04-02", channel="in_person")  # April: not in March's report
    assert (
        await profile.client.put(
            f"/customers/{flagged}/key-account-report-subscription",
            json={"customer_opted_in": True},
            headers=as_actor(am, "account_manager"),
        )
    ).status_code == 200

    run = await profile.client.post("/account-manager/key-account-reports/runs", json={"month": "2024-03"}, headers=BOSS)
    assert run.status_code == 201 and run.json()["created"] is True, run.text
    again = await profile.client.post("/account-manager/key-account-reports/runs", json={"month": "2024-03"}, headers=BOSS)
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["reports"] == run.json()["reports"]

    page = await profile.client.get(
        "/account-manager/key-account-reports", params={"month": "2024-03"}, headers=as_actor(am, "account_manager")
    )
    assert page.status_code == 200, page.text
    by_customer = {item["customer_id"]: item for item in page.json()["items"]}
    assert set(by_customer) == {class_a, flagged}  # the class B customer is no key account
    content = by_customer[class_a]["content"]
    assert content["customer"]["key_account_reasons"] == ["class A"]
    assert by_customer[flagged]["content"]["customer"]["key_account_reasons"] == ["flagged by hand"]
    assert (by_customer[class_a]["customer_opted_in"], by_customer[flagged]["customer_opted_in"]) == (False, True)
    assert content["orders"] == {"count": 2, "revenue": 1500.0, "revenue_previous_month": 300.0, "revenue_currency": "CNY"}
    assert content["service_levels"]["targets_met"] is False
    assert content["service_levels"]["missed_targets"] == [{"measure": "on_time_delivery", "target": 0.95, "actual": 0.9}]
    assert content["complaints"] == {"filed": 1, "complaint_rate": 0.5}
    assert content["satisfaction"] == {
        "post_complaint_surveys": 1,
        "post_complaint_average": 4.0,
        "periodic_surveys": 0,
        "periodic_average": None,
    }
    assert content["visits"]["done"] == 1
    flagged_content = by_customer[flagged]["content"]
    assert flagged_content["orders"]["count"] == 0 and flagged_content["service_levels"]["targets_met"] is True

    events = await _ready_events(profile, {class_a, flagged, ordinary})
    assert sorted(e["customer_id"] for e in events) == sorted([class_a, flagged])  # one event per report, none on the rerun
    assert {e["customer_id"]: e["customer_opted_in"] for e in events} == {class_a: False, flagged: True}
    assert all(e["month"] == "2024-03" and e["account_manager"] == am for e in events)


async def test_who_reads_a_report_and_the_downloads(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: dt.date(2024, 7, 15)
    am, other = f"am-{uuid.uuid4().hex[:6]}", f"am-{uuid.uuid4().hex[:6]}"
    [key] = await _customers(profile, am, 1)
    await _class(profile, key, "A")
    await _deliver(profile, AccountOrdersHandler(), _order(key, "2024-06-10", "700"))
    assert (
        await profile.client.post("/account-manager/key-account-reports/runs", json={"month": "2024-06"}, headers=BOSS)
    ).status_code == 201
    path = f"/customers/{key}/key-account-reports"

    mine = await profile.client.get(f"{path}/2024-06", headers=as_actor(am, "account_manager"))
    assert mine.status_code == 200 and mine.json()["content"]["orders"]["revenue"] == 700.0
    assert [r["month"] for r in (await profile.client.get(path, headers=as_actor("agent-1", "agent"))).json()] == ["2024-06"]
    assert (await profile.client.get(f"{path}/2024-06", headers=as_actor(other, "account_manager"))).status_code == 404
    assert (await profile.client.get(f"{path}/2024-06", headers=as_actor(key, "customer"))).status_code == 404  # not opted in
    assert (await profile.client.get(f"{path}/2024-06", headers=as_actor("someone-else", "customer"))).status_code == 404
    assert (
        await profile.client.put(
            f"/customers/{key}/key-account-report-subscription",
            json={"customer_opted_in": True},
            headers=as_actor(other, "account_manager"),
        )
    ).status_code == 404
    assert (
        await profile.client.put(
            f"/customers/{key}/key-account-report-subscription",
            json={"customer_opted_in": True},
            headers=as_actor("someone-else", "customer"),
        )
    ).status_code == 404  # another customer's choice is not shown to exist
    opted = await profile.client.put(
        f"/customers/{key}/key-account-report-subscription", json={"customer_opted_in": True}, headers=as_actor(am, "account_manager")
    )
    assert opted.status_code == 200 and opted.json()["changed_by"] == am
    assert (await profile.client.get(f"{path}/2024-06", headers=as_actor(key, "customer"))).status_code == 200

    as_csv = await profile.client.get(f"{path}/2024-06", params={"format": "csv"}, headers=as_actor(am, "account_manager"))
    assert as_csv.headers["content-type"].startswith("text/csv") and "attachment" in as_csv.headers["content-disposition"]
    rows = {(r["section"], r["measure"]): r["value"] for r in csv.DictReader(io.StringIO(as_csv.text))}
    assert rows[("orders", "revenue")] == "700.0" and rows[("service_levels", "targets_met")] == "True"
    as_md = await profile.client.get(f"{path}/2024-06", params={"format": "md"}, headers=as_actor(am, "account_manager"))
    assert as_md.headers["content-type"].startswith("text/markdown") and "| orders | revenue | 700.0 |" in as_md.text

    assert (await profile.client.get(f"{path}/2024-05", headers=BOSS)).status_code == 404  # no report that month
    assert (await profile.client.get("/customers/nope/key-account-reports", headers=BOSS)).status_code == 404


async def test_the_customer_sets_its_own_opt_in(profile):
    """The choice is the customer's: it opts in and out itself (only its own), and reads its reports while opted in."""
    profile.client._transport.app.dependency_overrides[today] = lambda: dt.date(2024, 7, 15)
    am = f"am-{uuid.uuid4().hex[:6]}"
    key, neighbour = await _customers(profile, am, 2)
    await _class(profile, key, "A")
    # a month no other test runs (the database is the session's): its run reports this key account
    assert (
        await profile.client.post("/account-manager/key-account-reports/runs", json={"month": "2023-02"}, headers=BOSS)
    ).status_code == 201
    choice, me = f"/customers/{key}/key-account-report-subscription", as_actor(key, "customer")
    assert (await profile.client.get(choice, headers=me)).json()["customer_opted_in"] is False
    for stranger in (as_actor(neighbour, "customer"), as_actor(f"am-{uuid.uuid4().hex[:6]}", "account_manager")):
        assert (await profile.client.get(choice, headers=stranger)).status_code == 404
        refused = await profile.client.put(choice, json={"customer_opted_in": True}, headers=stranger)
        assert refused.status_code == 404 and refused.headers["content-type"].startswith("application/problem+json")
    for not_a_choice in ("yes please", "yes", "no", 1, "on", None):  # make run: "yes" was read as true
        refused = await profile.client.put(choice, json={"customer_opted_in": not_a_choice}, headers=me)
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json"), not_a_choice
    assert (await profile.client.put(choice, json={}, headers=me)).status_code == 422
    assert (await profile.client.get(choice, headers=BOSS)).json()["customer_opted_in"] is False  # refusals changed nothing

    opted = await profile.client.put(choice, json={"customer_opted_in": True}, headers=me)
    assert opted.status_code == 200 and (opted.json()["customer_opted_in"], opted.json()["changed_by"]) == (True, key)
    assert (await profile.client.get(choice, headers=as_actor(am, "account_manager"))).json()["customer_opted_in"] is True
    reports = await profile.client.get(f"/customers/{key}/key-account-reports", headers=me)
    assert reports.status_code == 200 and [r["month"] for r in reports.json()] == ["2023-02"]
    assert (await profile.client.put(choice, json={"customer_opted_in": False}, headers=me)).status_code == 200
    assert (await profile.client.get(f"/customers/{key}/key-account-reports", headers=me)).status_code == 404  # opted out again
    assert (await profile.client.get("/customers/nope/key-account-report-subscription", headers=BOSS)).status_code == 404


async def test_bad_input_is_a_problem(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: dt.date(2024, 7, 15)
    for month in ("2024-13", "24-06", "2024-07", "2030-01", "1999-12", "0000-01", ""):
        response = await profile.client.post("/account-manager/key-account-reports/runs", json={"month": month}, headers=BOSS)
        assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json"), (
            month,
            response.text,
        )
    assert (
        await profile.client.post("/account-manager/key-account-reports/runs", json={"month": "2024-06", "x": 1}, headers=BOSS)
    ).status_code == 422
    assert (
        await profile.client.post(
            "/account-manager/key-account-reports/runs", json={"month": "2024-06"}, headers=as_actor("am", "account_manager")
        )
    ).status_code == 403
    assert (await profile.client.get("/account-manager/key-account-reports", params={"month": "June"}, headers=BOSS)).status_code == 422
    assert (await profile.client.get("/customers/x/key-account-reports/2024-6", headers=BOSS)).status_code == 422
    assert (await profile.client.get("/customers/x/key-account-reports/2024-06", params={"format": "pdf"}, headers=BOSS)).status_code == 422
    assert (
        await profile.client.put("/customers/x/key-account-report-subscription", json={"customer_opted_in": "maybe"}, headers=BOSS)
    ).status_code == 422


async def test_the_scheduler_reports_the_previous_month_once_even_when_replicas_race(profile):
    [key] = await _customers(profile, f"am-{uuid.uuid4().hex[:6]}", 1, size_band="key_account")
    first_of_month = dt.datetime(2024, 9, 1, 0, 5, tzinfo=reports.BUSINESS_ZONE)  # 1 September in Shanghai, 31 August in UTC
    assert reports.previous_month(first_of_month.date()).label == "2024-08"
    runs = await asyncio.gather(*(reports.run_due(profile.runtime, now=first_of_month) for _ in range(3)))
    # the replicas share the month's chunks (a chunk is claimed by moving the run's cursor): every one that took part
    # answers the complete run, and below each key account has one report and one event
    assert {run.month for run in runs if run is not None} == {"2024-08"} and all(run.completed_at for run in runs if run is not None)
    assert await reports.run_due(profile.runtime, now=first_of_month + dt.timedelta(days=3)) is None  # after a restart: done
    async with profile.db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(KeyAccountReport)
            .where(KeyAccountReport.customer_id == key, KeyAccountReport.month == "2024-08")
        )
        run = await session.get(KeyAccountReportRun, "2024-08")
    assert count == 1 and run.started_by == "scheduler"
    assert len(await _ready_events(profile, {key})) == 1


async def test_a_month_is_stored_in_chunks_and_a_run_killed_half_way_resumes_exactly_once(profile, monkeypatch):
    """Each chunk commits its reports, events and the run's cursor together: a process dying inside the third chunk
    leaves two whole chunks (no half chunk), and the next pass stores the rest, each key account once."""
    month = "2023-07"  # no other test runs it (the database is the session's)
    am = f"am-{uuid.uuid4().hex[:6]}"
    flagged = await _customers(profile, am, 7, size_band="key_account")
    period = reports.parse_month(month, dt.date(2024, 7, 15))
    real_emit, emitted = reports.emit, []

    async def dying_emit(session, payload, **kwargs):
        if len(emitted) == 5:  # inside the third chunk of 2
            raise RuntimeError("kill -9")
        emitted.append(payload.customer_id)
        return await real_emit(session, payload, **kwargs)

    monkeypatch.setattr(reports, "emit", dying_emit)
    with pytest.raises(RuntimeError):
        await reports.run_month(profile.runtime, period, started_by="test", chunk_size=2)
    async with profile.db.sessions() as session:
        run = await session.get(KeyAccountReportRun, month)
        stored = (await session.scalars(select(KeyAccountReport.customer_id).where(KeyAccountReport.month == month))).all()
    assert run.completed_at is None and run.reports == 4 and len(stored) == 4  # two whole chunks, the third rolled back
    events = [e for e in await outbox_events(profile.db, type_="KeyAccountReportReady") if e.payload["month"] == month]
    assert sorted(e.payload["customer_id"] for e in events) == sorted(stored)
    listed = await profile.client.get("/account-manager/key-account-reports/runs", headers=BOSS)
    assert [r for r in listed.json() if r["month"] == month][0]["completed_at"] is None  # shown as going on

    monkeypatch.setattr(reports, "emit", real_emit)
    resumed = await profile.client.post("/account-manager/key-account-reports/runs", json={"month": month}, headers=BOSS)
    assert resumed.status_code == 201 and resumed.json()["completed_at"] is not None, resumed.text
    async with profile.db.sessions() as session:
        stored = (await session.scalars(select(KeyAccountReport.customer_id).where(KeyAccountReport.month == month))).all()
    mine = sorted(cid for cid in stored if cid in flagged)
    assert mine == sorted(flagged) and len(stored) == len(set(stored)) == resumed.json()["reports"]
    events = [e for e in await outbox_events(profile.db, type_="KeyAccountReportReady") if e.payload["month"] == month]
    assert sorted(e.payload["customer_id"] for e in events) == sorted(stored)  # each key account's event once
    again = await profile.client.post("/account-manager/key-account-reports/runs", json={"month": month}, headers=BOSS)
    assert again.status_code == 200 and again.json()["created"] is False
