"""Console serving, demo login (development only), ops routes. Production refusals: test_production_mode.py."""

from __future__ import annotations


async def test_console_is_served_without_cdn(gw):
    client, _ = gw
    page = await client.get("/console")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'src="/console/static/console.js"' in page.text
    for asset in ("console.js", "charts.js", "i18n.js", "console.css", "signed-link.js", "survey.js", "satisfaction-survey.js"):
        response = await client.get(f"/console/static/{asset}")
        assert response.status_code == 200, asset
        text = response.text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace is a name, not a fetch
        assert "http://" not in text and "https://" not in text, asset
    assert (await client.get("/", follow_redirects=False)).headers["location"] == "/console"


async def test_demo_login_mints_a_working_token_in_development(gw):
    client, _ = gw
    users = (await client.get("/api/v1/auth/demo-users")).json()["users"]
    assert {(u["username"], u["role"]) for u in users} == {
        ("agent", "agent"),
        ("manager", "account_manager"),
        ("customer", "customer"),
        ("admin", "admin"),
    }
    token = (await client.post("/api/v1/auth/demo-login", json={"username": "agent"})).json()["access_token"]
    me = (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert (me["subject"], me["role"], me["team"]) == ("li-na", "agent", "transport")  # the demo seeder's agent li-na
    assert (await client.post("/api/v1/auth/demo-login", json={"username": "root"})).status_code == 401


async def test_demo_customer_user_when_configured(make_gateway):
    client, _, _ = await make_gateway(demo_customer_id="C1")
    token = (await client.post("/api/v1/auth/demo-login", json={"username": "customer"})).json()["access_token"]
    me = (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["role"] == "customer" and me["customer_id"] == "C1"


async def test_demo_customer_is_found_by_its_contact_phone(make_gateway):
    users = [
        {"username": "customer", "role": "customer", "subject": "c-user", "customer_phone": "13900000002"},
        {"username": "lost", "role": "customer", "customer_phone": "10000000000"},
    ]
    client, _, _ = await make_gateway(demo_users=users)
    token = (await client.post("/api/v1/auth/demo-login", json={"username": "customer"})).json()["access_token"]
    me = (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert (me["subject"], me["role"], me["customer_id"]) == ("c-user", "customer", "C2")
    missing = await client.post("/api/v1/auth/demo-login", json={"username": "lost"})
    assert missing.status_code == 409 and "make demo" in missing.json()["detail"]


async def test_no_demo_login_when_it_is_off(make_gateway):
    client, _, _ = await make_gateway(demo_login=False)
    assert (await client.post("/api/v1/auth/demo-login", json={"username": "admin"})).status_code == 404
    assert (await client.get("/api/v1/auth/demo-users")).status_code == 404


async def test_anonymous_callers_are_rate_limited_by_address(make_gateway):
    client, _, _ = await make_gateway(rate_limits={"anonymous": (0.1, 2)})
    statuses = [(await client.get("/api/v1/auth/demo-users")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_health_and_readiness(gw):
    client, _ = gw
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = (await client.get("/readyz")).json()
    assert ready["checks"]["database"] == "ok"


async def test_console_and_survey_pages_carry_a_strict_content_security_policy(gw):
    client, settings = gw
    for path in ("/console", "/console/static/console.js", "/survey/K1?token=x", "/satisfaction-survey/I1?token=x"):
        response = await client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy, path
        assert response.headers["referrer-policy"] == "no-referrer" and response.headers["x-content-type-options"] == "nosniff"
    api = await client.get("/api/v1/auth/demo-users")
    assert api.headers["referrer-policy"] == "no-referrer" and "content-security-policy" not in api.headers
