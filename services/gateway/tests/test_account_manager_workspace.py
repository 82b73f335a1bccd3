"""The account manager's workspace through the gateway, with roles: an account manager sees only their portfolio
(the profile's account_manager, narrowed further by the token's `customers` claim), staff see every portfolio,
a customer none; quotas are read by the workspace's users and changed by an admin only."""

from __future__ import annotations

import asyncio

import httpx
import pytest

pytest.importorskip("crm_profile", reason="customer-profile service not installed")

from crm_common.db import utcnow  # noqa: E402
from crm_common.migrations import upgrade  # noqa: E402
from crm_gateway.main import create_app  # noqa: E402
from crm_gateway.settings import GatewaySettings  # noqa: E402
from gateway_support import FakeUpstreams, auth, gateway_before_real_profile, role_headers  # noqa: E402


async def test_account_manager_sees_only_their_portfolio_and_worklist(database_factory, gateway_db, db_kind):
    async with gateway_before_real_profile(database_factory, gateway_db, db_kind) as (client, settings):
        admin = role_headers(settings, "admin")
        ids = {}
        for name, manager in (("Wu One Freight", "am-wu"), ("Wu Two Cold Chain", "am-wu"), ("Zhao Warehousing", "am-zhao")):
            response = await client.post("/api/v1/customers", json={"name": name, "account_manager": manager}, headers=admin)
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
        wu_one, wu_two, zhao = ids.values()
        wu = auth(settings, "account_manager", "am-wu")

        portfolio = await client.get("/api/v1/account-manager/portfolio", headers=wu)
        assert portfolio.status_code == 200, portfolio.text
        assert sorted(i["customer_id"] for i in portfolio.json()["items"]) == sorted([wu_one, wu_two])
        narrowed = await client.get(
            "/api/v1/account-manager/portfolio", headers=auth(settings, "account_manager", "am-wu", customers=[wu_one])
        )
        assert [i["customer_id"] for i in narrowed.json()["items"]] == [wu_one]
        other = await client.get("/api/v1/account-manager/portfolio", params={"account_manager": "am-zhao"}, headers=wu)
        assert other.status_code == 403 and "Zhao" not in other.text
        everyone = await client.get("/api/v1/account-manager/portfolio", headers=admin)
        assert {wu_one, wu_two, zhao} <= {i["customer_id"] for i in everyone.json()["items"]}
        zhao_only = await client.get(
            "/api/v1/account-manager/portfolio", params={"account_manager": "am-zhao"}, headers=role_headers(settings, "agent")
        )
        assert [i["customer_id"] for i in zhao_only.json()["items"]] == [zhao]
        assert (await client.get("/api/v1/account-manager/portfolio", headers=role_headers(settings, "customer"))).status_code == 403
        assert (await client.get("/api/v1/account-manager/portfolio")).status_code == 401

        # the visit and call log feeds the worklist; the manager declares the relationship on their own customer only
        call = {
            "kind": "call",
            "channel": "phone",
            "author": "am-wu",
            "summary": "asked about Q1 volumes",
            "outcome": "needs_follow_up",
            "next_step": "send the Q1 rate card",
            "next_follow_up": "2026-01-05",
        }
        logged = await client.post(f"/api/v1/customers/{wu_two}/interactions", json=call, headers=wu)
        assert logged.status_code == 201, logged.text
        assert (await client.post(f"/api/v1/customers/{zhao}/interactions", json=call, headers=wu)).status_code == 404
        bad = await client.post(f"/api/v1/customers/{wu_two}/interactions", json=call | {"outcome": "maybe"}, headers=wu)
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        worklist = await client.get("/api/v1/account-manager/worklist", headers=wu)
        assert [(i["kind"], i["customer_id"], i["detail"], i["overdue"]) for i in worklist.json()["items"]] == [
            ("follow_up", wu_two, "send the Q1 rate card", True)
        ]
        assert (await client.get("/api/v1/account-manager/worklist", headers=auth(settings, "account_manager", "am-zhao"))).json()[
            "items"
        ] == []
        declared = await client.patch(
            f"/api/v1/customers/{wu_one}",
            json={"share_of_wallet": 0.3, "relationship_level": "cooperation"},
            headers=wu | {"If-Match": '"1"'},
        )
        assert declared.status_code == 200, declared.text
        assert (
            await client.patch(f"/api/v1/customers/{zhao}", json={"share_of_wallet": 0.3}, headers=wu | {"If-Match": '"1"'})
        ).status_code == 404


async def test_visit_quotas_read_by_the_workspace_changed_by_an_admin(database_factory, gateway_db):
    async with gateway_before_real_profile(database_factory, gateway_db, "sqlite") as (client, settings):
        manager, admin = role_headers(settings, "account_manager"), role_headers(settings, "admin")
        quotas = await client.get("/api/v1/account-manager/visit-quotas", headers=manager)
        assert quotas.status_code == 200 and {"applies_to": "abc_class", "value": "A", "visits": 3, "period": "quarter"} in quotas.json()
        change = [{"applies_to": "tier", "value": "key_account", "visits": 4, "period": "quarter"}]
        assert (await client.put("/api/v1/account-manager/visit-quotas", json=change, headers=manager)).status_code == 403
        bad = await client.put("/api/v1/account-manager/visit-quotas", json=[change[0] | {"visits": 0}], headers=admin)
        assert bad.status_code == 422
        saved = await client.put("/api/v1/account-manager/visit-quotas", json=change, headers=admin)
        assert saved.status_code == 200 and saved.json() == change


async def test_win_back_through_the_gateway_with_roles(database_factory, gateway_db, db_kind):
    """The survey call goes to a neutral agent of the pool (not the account manager, who may not record it); the account
    manager sends an offer from the case and records the answer; another manager sees nothing of it."""
    async with gateway_before_real_profile(database_factory, gateway_db, db_kind) as (client, settings):
        admin = role_headers(settings, "admin")
        created = await client.post(
            "/api/v1/customers", json={"name": "Qian Lost Express", "account_manager": "am-qian", "status": "active"}, headers=admin
        )
        assert created.status_code == 201, created.text
        customer = created.json()["id"]
        qian, sun = auth(settings, "account_manager", "am-qian"), auth(settings, "account_manager", "am-sun")
        zhou = auth(settings, "agent", "agent-zhou")
        pool = "/api/v1/account-manager/win-back-call-agents"
        not_neutral = await client.put(pool, json={"agents": ["agent-zhou", "am-qian"]}, headers=admin)
        assert not_neutral.status_code == 422 and not_neutral.headers["content-type"].startswith("application/problem+json")
        assert (await client.put(pool, json={"agents": ["agent-zhou"]}, headers=qian)).status_code == 403
        assert (await client.put(pool, json={"agents": ["agent-zhou"]}, headers=admin)).json() == {"agents": ["agent-zhou"]}
        terminated = await client.patch(f"/api/v1/customers/{customer}", json={"status": "lost"}, headers=qian | {"If-Match": "*"})
        assert terminated.status_code == 200, terminated.text

        cases = await client.get("/api/v1/account-manager/win-back-cases", headers=qian)
        assert cases.status_code == 200, cases.text
        [case] = [c for c in cases.json()["items"] if c["customer_id"] == customer]
        assert (case["cause"], case["status"], case["call_agent"]) == ("terminated", "in_progress", "agent-zhou")
        mine = (await client.get("/api/v1/account-manager/worklist", headers=qian)).json()["items"]
        assert [i for i in mine if i["kind"] == "win_back_call"] == []  # the manager does not ask why their customer left
        calls = (await client.get("/api/v1/account-manager/worklist", params={"account_manager": "agent-zhou"}, headers=zhou)).json()[
            "items"
        ]
        assert [(i["kind"], i["case_id"], i["call_agent"]) for i in calls if i["customer_id"] == customer] == [
            ("win_back_call", case["id"], "agent-zhou")
        ]
        assert [
            c
            for c in (await client.get("/api/v1/account-manager/win-back-cases", headers=sun)).json()["items"]
            if c["customer_id"] == customer
        ] == []
        assert (await client.get(f"/api/v1/account-manager/win-back-cases/{case['id']}", headers=sun)).status_code == 404
        survey = f"/api/v1/account-manager/win-back-cases/{case['id']}/survey"
        refused = await client.post(survey, json={"reasons": ["price"]}, headers=sun)
        assert refused.status_code == 404 and refused.headers["content-type"].startswith("application/problem+json")
        own_manager = await client.post(survey, json={"reasons": ["price"]}, headers=qian)
        assert own_manager.status_code == 403 and "neutral" in own_manager.json()["detail"]
        bad = await client.post(survey, json={"reasons": ["nope"], "extra": 1}, headers=zhou)
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        surveyed = await client.post(survey, json={"reasons": ["competitor_offer"], "would_return_if": "matched price"}, headers=zhou)
        assert surveyed.status_code == 200 and surveyed.json()["surveyed_by"] == "agent-zhou", surveyed.text

        offers = f"/api/v1/account-manager/win-back-cases/{case['id']}/offers"
        offer = {"summary": "matched price for six months", "discount_percent": 8, "valid_until": f"{utcnow().year + 1}-01-31"}
        assert (await client.post(offers, json={**offer, "valid_until": "2020-01-01"}, headers=qian)).status_code == 422
        assert (await client.post(offers, json=offer, headers=sun)).status_code == 404
        assert (await client.post(offers, json=offer, headers=zhou)).status_code == 403
        sent = await client.post(offers, json=offer, headers=qian)
        assert sent.status_code == 201, sent.text
        answered = await client.post(f"{offers}/{sent.json()['id']}/response", json={"response": "accepted"}, headers=qian)
        assert answered.status_code == 200 and answered.json()["response"] == "accepted"
        assert (await client.post(f"{offers}/{sent.json()['id']}/response", json={"response": "accepted"}, headers=sun)).status_code == 404
        won = await client.post(f"/api/v1/account-manager/win-back-cases/{case['id']}/outcome", json={"outcome": "won_back"}, headers=qian)
        assert won.status_code == 200 and (await client.get(f"/api/v1/customers/{customer}", headers=qian)).json()["status"] == "active"
        assert [o["response"] for o in won.json()["offers"]] == ["accepted"]

        month = case["lost_at"][:7]
        mine = await client.get("/api/v1/account-manager/win-back-report", params={"since": month}, headers=qian)
        assert mine.status_code == 200, mine.text
        row = mine.json()["months"][0]
        assert mine.json()["account_manager"] == "am-qian" and (row["won_back"], row["offers_sent"], row["offers_accepted"]) == (1, 1, 1)
        assert (
            await client.get("/api/v1/account-manager/win-back-report", params={"since": month, "account_manager": "am-qian"}, headers=sun)
        ).status_code == 403
        everyone = await client.get("/api/v1/account-manager/win-back-report.csv", params={"since": month}, headers=admin)
        assert (
            everyone.status_code == 200
            and everyone.headers["content-type"].startswith("text/csv")
            and "reason_competitor_offer" in everyone.text
        )
        customer_token = role_headers(settings, "customer")
        assert (await client.get("/api/v1/account-manager/win-back-cases", headers=customer_token)).status_code == 403
        assert (await client.post(offers, json=offer, headers=customer_token)).status_code == 403


async def test_kpis_through_the_gateway_a_manager_ranks_an_account_manager_sees_their_own(database_factory, gateway_db):
    async with gateway_before_real_profile(database_factory, gateway_db, "sqlite") as (client, settings):
        admin = role_headers(settings, "admin")
        for name, manager in (("Li Kpi Freight", "am-li"), ("Ma Kpi Cold Chain", "am-ma")):
            assert (
                await client.post("/api/v1/customers", json={"name": name, "account_manager": manager}, headers=admin)
            ).status_code == 201
        month = utcnow().strftime("%Y-%m")
        ranked = await client.get("/api/v1/account-manager/kpis", params={"period": month, "sort": "churn_rate"}, headers=admin)
        assert ranked.status_code == 200, ranked.text
        assert {"am-li", "am-ma"} <= {row["account_manager"] for row in ranked.json()["items"]}
        own = await client.get("/api/v1/account-manager/kpis", params={"period": month}, headers=auth(settings, "account_manager", "am-li"))
        assert own.status_code == 200 and [row["account_manager"] for row in own.json()["items"]] == ["am-li"]
        other = await client.get(
            "/api/v1/account-manager/kpis",
            params={"period": month, "account_manager": "am-ma"},
            headers=auth(settings, "account_manager", "am-li"),
        )
        assert other.status_code == 403
        bad = await client.get("/api/v1/account-manager/kpis", params={"period": "2026-Q9"}, headers=admin)
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        assert (
            await client.get("/api/v1/account-manager/kpis", params={"period": month}, headers=role_headers(settings, "customer"))
        ).status_code == 403


async def test_an_account_manager_reads_and_closes_only_their_own_inbox(database_factory, gateway_db):
    """The real profile and notifications behind the gateway: /inbox is the caller's own for an account manager."""
    pytest.importorskip("crm_notifications", reason="notifications service not installed")
    import crm_notifications
    import crm_profile
    from crm_notifications.delivery.models import InboxTask
    from crm_notifications.main import create_app as notifications_app
    from crm_notifications.settings import NotificationsSettings
    from crm_profile.main import create_app as profile_app
    from crm_profile.settings import ProfileSettings

    urls = {}
    for name, ini in (("profile", crm_profile.ALEMBIC_INI), ("notifications", crm_notifications.ALEMBIC_INI)):
        urls[name] = await database_factory.create("sqlite", f"inbox{name}")
        await asyncio.to_thread(upgrade, ini, urls[name])
    quiet = {"run_consumers": False, "run_outbox_relay": False}
    profile = profile_app(ProfileSettings(database_url=urls["profile"], **quiet), start_background=False)
    notifications = notifications_app(
        NotificationsSettings(database_url=urls["notifications"], run_dispatcher=False, run_scans=False, **quiet), start_background=False
    )
    settings = GatewaySettings(database_url=gateway_db)
    gateway = create_app(
        settings,
        start_background=False,
        transports=FakeUpstreams().transports(
            profile=httpx.ASGITransport(app=profile), notifications=httpx.ASGITransport(app=notifications)
        ),
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway")
    try:
        admin = role_headers(settings, "admin")
        ids = {}
        for name, manager in (("Feng Inbox Freight", "am-feng"), ("Yang Inbox Cold Chain", "am-yang")):
            created = await client.post("/api/v1/customers", json={"name": name, "account_manager": manager}, headers=admin)
            ids[manager] = created.json()["id"]
        async with notifications.state.runtime.transaction() as session:
            for n, (assignee, customer) in enumerate(
                (("am-feng", ids["am-feng"]), ("am-yang", ids["am-yang"]), ("finance", ids["am-feng"]))
            ):
                session.add(
                    InboxTask(id=f"t{n}", message_id=f"m{n}", assignee=assignee, customer_id=customer, title=f"task {n}", body="do it")
                )
        feng = auth(settings, "account_manager", "am-feng")

        mine = await client.get("/api/v1/inbox", headers=feng)
        assert mine.status_code == 200, mine.text
        assert [t["id"] for t in mine.json()] == ["t0"]  # not am-yang's, not finance's about the same customer
        other = await client.get("/api/v1/inbox", params={"assignee": "finance"}, headers=feng)
        assert other.status_code == 403 and other.headers["content-type"].startswith("application/problem+json")
        assert (await client.post("/api/v1/inbox/t1/done", headers=feng)).status_code == 404  # another manager's task
        done = await client.post("/api/v1/inbox/t0/done", headers=feng)
        assert done.status_code == 200 and done.json()["done_at"]
        assert (await client.get("/api/v1/inbox", headers=feng)).json() == []
        staff = await client.get("/api/v1/inbox", params={"assignee": "finance"}, headers=role_headers(settings, "agent"))
        assert [t["id"] for t in staff.json()] == ["t2"]
        missing = await client.get("/api/v1/inbox", headers=admin)
        assert missing.status_code == 422 and missing.json()["errors"][0]["loc"] == ["query", "assignee"]
        assert (await client.get("/api/v1/inbox", headers=role_headers(settings, "customer"))).status_code == 403
    finally:
        await client.aclose()
        await gateway.state.gateway.aclose()
        await gateway.state.runtime.db.dispose()
        for app in (profile, notifications):
            await app.state.runtime.db.dispose()


async def test_key_account_reports_the_customer_opts_in_itself_and_reads_only_its_own(database_factory, gateway_db, db_kind):
    async with gateway_before_real_profile(database_factory, gateway_db, db_kind) as (client, settings):
        admin = role_headers(settings, "admin")
        ids = []
        for name in ("Huaxin Key Electronics", "Other Key Foods"):
            created = await client.post(
                "/api/v1/customers", json={"name": name, "account_manager": "am-he", "size_band": "key_account"}, headers=admin
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        mine, theirs = ids
        run = await client.post("/api/v1/account-manager/key-account-reports/runs", json={"month": "2025-03"}, headers=admin)
        assert run.status_code == 201 and run.json()["reports"] == 2, run.text
        me = auth(settings, "customer", "portal-huaxin", customer_id=mine)
        he = auth(settings, "account_manager", "am-he")

        choice = f"/api/v1/customers/{mine}/key-account-report-subscription"
        assert (await client.get(f"/api/v1/customers/{mine}/key-account-reports", headers=me)).status_code == 404  # not opted in
        for body in ({"customer_opted_in": "sure"}, {"customer_opted_in": True, "also": 1}):
            bad = await client.put(choice, json=body, headers=me)
            assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json"), bad.text
        other = await client.put(
            f"/api/v1/customers/{theirs}/key-account-report-subscription", json={"customer_opted_in": True}, headers=me
        )
        assert other.status_code == 404 and other.headers["content-type"].startswith("application/problem+json")
        assert (await client.get(f"/api/v1/customers/{theirs}/key-account-report-subscription", headers=admin)).json()[
            "customer_opted_in"
        ] is False

        opted = await client.put(choice, json={"customer_opted_in": True}, headers=me)
        assert opted.status_code == 200 and opted.json()["customer_opted_in"] is True, opted.text
        assert (await client.get(choice, headers=he)).json()["customer_opted_in"] is True
        reports = await client.get(f"/api/v1/customers/{mine}/key-account-reports", headers=me)
        assert reports.status_code == 200 and [r["month"] for r in reports.json()] == ["2025-03"]
        download = await client.get(f"/api/v1/customers/{mine}/key-account-reports/2025-03", params={"format": "csv"}, headers=me)
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
        assert (await client.get(f"/api/v1/customers/{theirs}/key-account-reports/2025-03", headers=me)).status_code == 404
        assert (await client.get("/api/v1/account-manager/key-account-reports", params={"month": "2025-03"}, headers=me)).status_code == 403
        month = await client.get("/api/v1/account-manager/key-account-reports", params={"month": "2025-03"}, headers=he)
        assert sorted(r["customer_id"] for r in month.json()["items"]) == sorted(ids)
