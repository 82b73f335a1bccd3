"""The demo seed creates realistic customers through the API and can run twice."""

import datetime as dt

from crm_profile.demo import CUSTOMERS, seed


async def test_seed_creates_the_demo_customers_once(profile):
    today = dt.date(2026, 11, 26)
    customers = await seed("http://profile", client=profile.client, today=today)
    assert len(customers) == len(CUSTOMERS) >= 30
    assert len({c["id"] for c in customers}) == len(customers)
    languages = {contact["language"] for c in customers for contact in c["contacts"]}
    assert languages == {"zh-CN", "en"}
    assert {"individual", "enterprise"} == {c["customer_type"] for c in customers}
    assert {"prospect", "active", "dormant", "lost", "blacklisted"} == {c["status"] for c in customers}
    ending_soon = [
        c for c in customers if c["contract_end"] and today <= dt.date.fromisoformat(c["contract_end"]) <= today + dt.timedelta(days=30)
    ]
    assert len(ending_soon) >= 5
    assert all(contact["phone"].startswith("+") for c in customers for contact in c["contacts"])
    with_log = (await profile.client.get(f"/customers/{customers[0]['id']}/interactions")).json()["items"]
    assert with_log and with_log[0]["author"] == customers[0]["account_manager"]

    again = await seed("http://profile", client=profile.client, today=today)
    assert [c["id"] for c in again] == [c["id"] for c in customers]
