"""`make run` seeds demo data into a fresh installation: a transient refusal is retried, a failure never stops the services."""

import datetime as dt
import random

import httpx

import demo_seed
import devrun


async def test_a_put_answered_409_or_503_is_retried_until_it_succeeds():
    answers = iter([409, 503, 200])
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(next(answers), json={})

    async with httpx.AsyncClient(base_url="http://complaints", transport=httpx.MockTransport(handler)) as client:
        await demo_seed._put(client, "/teams/transport", {"name": "Transport"})
    assert seen == ["/teams/transport"] * 3


async def test_a_put_refused_for_bad_input_is_not_retried():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(422, json={})

    async with httpx.AsyncClient(base_url="http://complaints", transport=httpx.MockTransport(handler)) as client:
        try:
            await demo_seed._put(client, "/teams/transport", {"name": "Transport"})
        except httpx.HTTPStatusError as exc:
            assert exc.response.status_code == 422
        else:
            raise AssertionError("a 422 must surface")
    assert len(seen) == 1


def test_a_failed_seeding_is_one_line_and_not_an_exception(monkeypatch):
    async def empty(urls):
        return True

    async def broken(urls, bootstrap):
        raise httpx.ConnectError("connection refused\nmore detail")

    monkeypatch.setattr(demo_seed, "installation_is_empty", empty)
    monkeypatch.setattr(demo_seed, "seed", broken)
    monkeypatch.delenv("CRM_DEMO", raising=False)
    line = devrun.seed_demo_if_empty([], "127.0.0.1:1")
    assert line.startswith("seeding FAILED (ConnectError: connection refused)") and "\n" not in line


async def test_demo_calendars_take_the_mainland_years_the_complaints_service_has():
    """The real complaints app answers: this year's dates go in where chinesecalendar has them, a year it lacks is skipped."""
    import datetime as dt

    from crm_complaints.setup import holidays

    def handler(request: httpx.Request) -> httpx.Response:
        year = int(request.url.path.rsplit("/", 1)[1])
        try:
            found = holidays.mainland_china(year)
        except holidays.YearNotCovered:
            return httpx.Response(404, json={})
        return httpx.Response(
            200, json={"holidays": [d.isoformat() for d in found.holidays], "workdays": [d.isoformat() for d in found.workdays]}
        )

    async with httpx.AsyncClient(base_url="http://complaints", transport=httpx.MockTransport(handler)) as client:
        calendar = await demo_seed._with_mainland_holidays(client, demo_seed.OFFICE_HOURS)
    assert calendar["periods"] == demo_seed.OFFICE_HOURS["periods"]
    expected = holidays.prefill(demo_seed.OFFICE_HOURS, dt.date.today())
    assert (sorted(calendar["holidays"]), sorted(calendar["workdays"])) == (expected["holidays"], expected["workdays"])


def test_demo_overdue_invoices_are_as_overdue_as_their_due_dates_say():
    now = dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC)
    customers = [{"id": f"{i:08d}-demo"} for i in range(10)]
    overdue = [event for _, event in demo_seed._order_events(customers, random.Random(1), now) if event.event_type == "PaymentOverdue"]
    assert overdue
    for invoice in overdue:  # the reminder says "was due on <due_date> and is <days_overdue> day(s) overdue"
        assert invoice.days_overdue > 0
        assert invoice.due_date + dt.timedelta(days=invoice.days_overdue) == now.date()
