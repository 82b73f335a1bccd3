"""Quarterly satisfaction surveys of key accounts (both databases): the worklist task until the quarter is answered,
one answer per quarter, and the answers in the KPI `satisfaction` and the monthly report."""

import datetime as dt
import uuid

from sqlalchemy import update

from crm_profile.accounts.api import today
from crm_profile.accounts.models import SatisfactionSurvey
from test_key_account_reports import BOSS, _class
from test_kpis import _customers, as_actor


async def test_a_key_account_gets_a_survey_task_until_it_answers_and_the_score_feeds_the_kpi(profile):
    day = dt.date.today()
    quarter_start = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    profile.client._transport.app.dependency_overrides[today] = lambda: quarter_start + dt.timedelta(days=25)  # due on day 30
    am = f"am-{uuid.uuid4().hex[:6]}"
    key, flagged, ordinary = await _customers(profile, am, 3)
    await _class(profile, key, "A")
    assert (
        await profile.client.patch(f"/customers/{flagged}", json={"size_band": "key_account"}, headers={"If-Match": "*"})
    ).status_code == 200
    me = as_actor(am, "account_manager")

    async def survey_tasks() -> set[str]:
        items = (await profile.client.get("/account-manager/worklist", headers=me)).json()["items"]
        return {item["customer_id"] for item in items if item["kind"] == "satisfaction_survey"}

    assert await survey_tasks() == {key, flagged}  # the ordinary customer gets none
    body = {"score": 4, "factors": {"on_time": 5, "price": 3}, "comment": "好，价格偏高"}
    answered = await profile.client.post(f"/customers/{key}/satisfaction-surveys", json=body, headers=me)
    assert answered.status_code == 201, answered.text
    assert (answered.json()["score"], answered.json()["factors"], answered.json()["recorded_by"]) == (4, {"on_time": 5, "price": 3}, am)
    assert await survey_tasks() == {flagged}
    again = await profile.client.post(f"/customers/{key}/satisfaction-surveys", json=body, headers=me)
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    assert (await profile.client.post(f"/customers/{flagged}/satisfaction-surveys", json={"score": 2}, headers=me)).status_code == 201
    listed = await profile.client.get(f"/customers/{key}/satisfaction-surveys", headers=me)
    assert [s["score"] for s in listed.json()] == [4]

    kpi_day = max(day, quarter_start)
    profile.client._transport.app.dependency_overrides[today] = lambda: kpi_day
    month = kpi_day.strftime("%Y-%m")
    [row] = (await profile.client.get("/account-manager/kpis", params={"period": month}, headers=me)).json()["items"]
    assert (row["satisfaction_surveys"], row["satisfaction"]) == (2, 3.0)
    ranked = await profile.client.get("/account-manager/kpis", params={"period": month, "sort": "satisfaction"}, headers=BOSS)
    assert ranked.status_code == 200 and ranked.json()["sort"] == "satisfaction"


async def test_bad_survey_answers_and_readers(profile):
    am, other = f"am-{uuid.uuid4().hex[:6]}", f"am-{uuid.uuid4().hex[:6]}"
    [key] = await _customers(profile, am, 1, size_band="key_account")
    me = as_actor(am, "account_manager")
    for body in (
        {"score": 0},
        {"score": 6},
        {"score": 3, "factors": {"weather": 3}},
        {"score": 3, "factors": {"price": 9}},
        {"score": 3, "extra": 1},
        {},
    ):
        response = await profile.client.post(f"/customers/{key}/satisfaction-surveys", json=body, headers=me)
        assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json"), body
    assert (
        await profile.client.post(f"/customers/{key}/satisfaction-surveys", json={"score": 3}, headers=as_actor(other, "account_manager"))
    ).status_code == 404
    assert (
        await profile.client.post(f"/customers/{key}/satisfaction-surveys", json={"score": 3}, headers=as_actor(key, "customer"))
    ).status_code == 403
    assert (await profile.client.post("/customers/nope/satisfaction-surveys", json={"score": 3}, headers=BOSS)).status_code == 404


async def test_the_monthly_report_shows_the_surveys_answered_in_its_month(profile):
    profile.client._transport.app.dependency_overrides[today] = lambda: dt.date(2023, 5, 10)
    [key] = await _customers(profile, f"am-{uuid.uuid4().hex[:6]}", 1, size_band="key_account")
    assert (await profile.client.post(f"/customers/{key}/satisfaction-surveys", json={"score": 5}, headers=BOSS)).status_code == 201
    async with profile.runtime.transaction() as session:  # answered by the real clock: date it in April 2023
        await session.execute(
            update(SatisfactionSurvey)
            .where(SatisfactionSurvey.customer_id == key)
            .values(answered_at=dt.datetime(2023, 4, 12, tzinfo=dt.UTC), quarter="2023-Q2")
        )
    assert (
        await profile.client.post("/account-manager/key-account-reports/runs", json={"month": "2023-04"}, headers=BOSS)
    ).status_code == 201
    report = (await profile.client.get(f"/customers/{key}/key-account-reports/2023-04", headers=BOSS)).json()
    assert report["content"]["satisfaction"] == {
        "post_complaint_surveys": 0,
        "post_complaint_average": None,
        "periodic_surveys": 1,
        "periodic_average": 5.0,
    }
