"""The HTTP API in-process: templates, rules, preview, preferences, deliveries, segment sends."""

import json

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import update

from crm_common.events.complaints import ComplaintFiled
from crm_common.events.scoring import CustomerScored
from crm_devbroker.testing import edge_auth
from crm_notifications.delivery.models import Message
from crm_notifications.main import create_app
from notifications_support import T0, EventFeeder, customer_registered, event, settings_for


async def _client(url, smtp, provider, clock):
    app = create_app(settings_for(url, smtp_port=smtp.port, provider_url=provider.url), start_background=False, clock=clock)
    runtime = app.state.runtime
    await runtime.seed_defaults()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nf", auth=edge_auth(app))
    client.runtime = runtime
    return client


@pytest_asyncio.fixture
async def api_both(db_url, smtp, provider, clock):
    """On SQLite and PostgreSQL, for the queries where the database matters."""
    client = await _client(db_url, smtp, provider, clock)
    yield client
    await client.aclose()
    await client.runtime.stop()


@pytest_asyncio.fixture
async def api(sqlite_url, smtp, provider, clock):
    """CRUD and validation: SQLite only."""
    client = await _client(sqlite_url, smtp, provider, clock)
    yield client
    await client.aclose()
    await client.runtime.stop()


TEMPLATE = {
    "key": "monthly_report",
    "language": "en",
    "subject": "Your report for {{ customer_name }}",
    "body": "Dear {{ contact_name }}, see the attached report.",
    "variables": ["customer_name", "contact_name"],
}


async def test_template_crud_and_versions(api):
    created = await api.post("/templates", json=TEMPLATE)
    assert created.status_code == 201 and created.json()["version"] == 1
    updated = await api.put(
        "/templates/monthly_report/en", json={**{k: TEMPLATE[k] for k in ("subject", "variables")}, "body": "Hello {{ contact_name }}"}
    )
    assert updated.status_code == 200 and updated.json()["version"] == 2
    current = await api.get("/templates/monthly_report/en")
    assert current.json()["body"] == "Hello {{ contact_name }}"
    versions = await api.get("/templates/monthly_report/versions")
    assert [v["version"] for v in versions.json()] == [1, 2]
    assert (await api.get("/templates/monthly_report/zh-CN")).status_code == 404
    assert (await api.delete("/templates/monthly_report")).status_code == 204
    assert (await api.get("/templates/monthly_report/en")).status_code == 404
    keys = {t["key"] for t in (await api.get("/templates")).json()}
    assert "complaint_ack" in keys and "monthly_report" not in keys


async def test_unknown_template_variable_is_a_422_at_save(api):
    response = await api.post("/templates", json={**TEMPLATE, "body": "Dear {{ contact_name }}, you owe {{ debt }}"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["type"] == "undeclared_variable" and "debt" in error["msg"]
    unknown = await api.post("/templates", json={**TEMPLATE, "variables": ["customer_name", "contact_name", "shoe_size"]})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["type"] == "unknown_variable"


async def test_preview_with_sample_data(api):
    response = await api.post(
        "/templates/complaint_ack/preview", json={"language": "en", "data": {"complaint_number": "CP-1", "contact_name": "Ann"}}
    )
    assert response.status_code == 200
    assert response.json()["subject"] == "We received your complaint CP-1"
    assert "Dear Ann" in response.json()["body"] and "<category>" in response.json()["body"]
    draft = await api.post("/templates/x/preview", json={"template": {"subject": "{{ nope }}", "body": "b", "variables": []}})
    assert draft.status_code == 422


async def test_rule_crud_and_validation(api):
    rule = {
        "name": "complaint-filed-sms",
        "event_type": "ComplaintFiled",
        "template_key": "complaint_ack",
        "audience": "event_contact",
        "channel": "sms",
        "category": "complaint_updates",
        "conditions": [{"field": "priority", "op": "in", "value": ["P1"]}],
    }
    created = await api.post("/rules", json=rule)
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    assert (await api.post("/rules", json=rule)).status_code == 409
    stale = await api.put(f"/rules/{rule_id}", json={**rule, "enabled": False}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    changed = await api.put(f"/rules/{rule_id}", json={**rule, "enabled": False}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.json()["version"] == 2 and changed.json()["enabled"] is False
    assert (await api.delete(f"/rules/{rule_id}")).status_code == 204
    assert (await api.get(f"/rules/{rule_id}")).status_code == 404
    assert {r["name"] for r in (await api.get("/rules", params={"event_type": "ShipmentDelayed"})).json()} == {"shipment-delayed-notice"}


@pytest.mark.parametrize(
    "change, error_type",
    [
        ({"event_type": "ParcelTeleported"}, "unknown_event"),
        ({"channel": "carrier_pigeon"}, "unknown_channel"),
        ({"template_key": "no_such_template"}, "unknown_template"),
        ({"template_key": "payment_reminder"}, "template_variables"),  # needs invoice_id, which ComplaintFiled lacks
        ({"conditions": [{"field": "shoe_size", "op": "eq", "value": 1}]}, "unknown_field"),
        ({"category": "gossip"}, "unknown_category"),
        ({"audience": "account_manager"}, "channel_audience_mismatch"),
    ],
)
async def test_bad_rules_are_422_with_the_reason(api, change, error_type):
    rule = {
        "name": "bad",
        "event_type": "ComplaintFiled",
        "template_key": "complaint_ack",
        "audience": "event_contact",
        "channel": "email",
        "category": "complaint_updates",
        **change,
    }
    response = await api.post("/rules", json=rule)
    assert response.status_code == 422
    assert error_type in [e["type"] for e in response.json()["errors"]]


LONE = "\ud800"  # half of a surrogate pair: JSON can escape it, UTF-8 (and so PostgreSQL) cannot store it


@pytest.mark.parametrize(
    "path, body, loc",
    [
        ("/rules", {"event_type": "ComplaintFiled" + LONE}, ["body", "event_type"]),
        ("/rules", {"category": LONE}, ["body", "category"]),
        ("/rules", {"digest_key": LONE}, ["body", "digest_key"]),
        ("/rules", {"conditions": [{"field": "priority", "op": "in", "value": ["P1", LONE]}]}, ["body", "conditions", "0", "value"]),
        ("/templates", {**TEMPLATE, "body": f"Dear {LONE}{{{{ contact_name }}}}"}, ["body", "body"]),
    ],
)
async def test_text_that_cannot_be_stored_is_a_422_on_both_databases(api_both, path, body, loc):
    rule = {
        "name": "lone",
        "event_type": "ComplaintFiled",
        "template_key": "complaint_ack",
        "audience": "event_contact",
        "channel": "email",
        "category": "complaint_updates",
    }
    sent = body if path == "/templates" else {**rule, **body}
    # json.dumps escapes the lone surrogate as \ud800, as a client would send it (it cannot be encoded as UTF-8 at all)
    response = await api_both.post(path, content=json.dumps(sent), headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json"), response.text
    # a length or pattern constraint already refuses it as string_unicode; a plain str or a free value as lone_surrogate
    assert [e["type"] for e in response.json()["errors"] if e["loc"] == loc] in (["lone_surrogate"], ["string_unicode"]), response.text
    assert not [r for r in (await api_both.get("/rules")).json() if r["name"] == "lone"]
    assert (await api_both.post("/rules", json=rule)).status_code == 201  # the same body without it is stored


async def test_preferences_and_invalid_addresses(api):
    await EventFeeder(api.runtime).feed(customer_registered("c1", [{"contact_id": "k1", "email": "a@example.com", "language": "en"}]))
    bad = await api.put("/preferences/contacts/k1", json={"addresses": {"email": "not-an-email", "sms": "12", "webhook": "ftp://x"}})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {
        ("body", "addresses", "email"),
        ("body", "addresses", "sms"),
        ("body", "addresses", "webhook"),
    }
    good = await api.put(
        "/preferences/contacts/k1",
        json={
            "addresses": {"sms": "+8613800138000"},
            "categories": {"shipment_status": {"opted_in": False}, "complaint_updates": {"opted_in": False}},
        },
    )
    assert good.status_code == 200
    states = {c["category"]: c["effective"] for c in good.json()["categories"]}
    assert states["shipment_status"] == "not subscribed to shipment_status"
    assert states["complaint_updates"] == "send"  # transactional
    assert states["win_back"] == "no marketing consent"
    assert good.json()["addresses"] == {"email": "a@example.com", "sms": "+8613800138000"}
    assert (await api.get("/preferences/contacts/nobody")).status_code == 404


async def test_the_star_entry_is_shown_and_is_the_default_of_every_category_without_its_own(api):
    await EventFeeder(api.runtime).feed(
        customer_registered("c1", [{"contact_id": "k1", "email": "a@example.com", "language": "en", "marketing_consent": True}])
    )
    assert (await api.get("/preferences/contacts/k1")).json()["every_category"] is None
    response = await api.put(
        "/preferences/contacts/k1", json={"categories": {"*": {"opted_in": False, "channel": "sms"}, "retention": {"opted_in": True}}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["every_category"] == {"opted_in": False, "channel": "sms"}
    states = {c["category"]: c["effective"] for c in body["categories"]}
    assert states["bills"] == "not subscribed to bills"  # service
    assert states["marketing"] == "opted out of marketing"  # marketing
    assert states["retention"] == "send"  # its own entry wins
    assert states["complaint_updates"] == "send"  # transactional


async def test_delivery_log_per_customer(api_both, smtp):
    api = api_both
    feeder = EventFeeder(api.runtime)
    await feeder.feed(customer_registered("c2", [{"contact_id": "k2", "email": "b@example.com", "language": "en"}]))
    await feeder.feed(
        event(
            ComplaintFiled(
                complaint_id="x",
                complaint_number="CP-7",
                customer_id="c2",
                category="delay",
                priority="P3",
                channel="web",
                contact_id="k2",
                filed_at=T0,
            )
        )
    )
    await api.runtime.dispatcher.run_once()
    log = (await api.get("/deliveries", params={"customer_id": "c2"})).json()
    assert len(log) == 1 and log[0]["status"] == "sent" and log[0]["subject"] == "We received your complaint CP-7"
    assert [entry["status"] for entry in log[0]["log"]] == ["queued", "sending", "sent"]
    assert (await api.get(f"/deliveries/{log[0]['id']}")).json()["id"] == log[0]["id"]
    assert (await api.get("/deliveries", params={"customer_id": "nobody"})).json() == []
    assert (await api.get("/deliveries")).status_code == 422
    report = (await api.get("/reports/notifications")).json()
    assert report["by_status"] == {"sent": 1} and report["by_rule"] == {"complaint-filed-ack": {"sent": 1}}
    assert report["by_channel"] == {"email": {"sent": 1}} and report["backlog"] == 0


async def test_segment_send_dry_run_then_send(api_both, smtp):
    api = api_both
    feeder = EventFeeder(api.runtime)
    for i, abc in enumerate(["A", "A", "B"]):
        await feeder.feed(
            customer_registered(
                f"s{i}", [{"contact_id": f"ks{i}", "email": f"s{i}@example.com", "language": "en", "marketing_consent": i != 1}]
            )
        )
        await feeder.feed(event(CustomerScored(customer_id=f"s{i}", abc_class=abc, scored_at=T0)))
    await api.post(
        "/templates",
        json={
            "key": "a_class_news",
            "language": "en",
            "subject": "News for {{ customer_name }}",
            "body": "Dear {{ contact_name }}, thank you.",
            "variables": ["customer_name", "contact_name"],
        },
    )
    request = {"segment": {"abc_class": "A"}, "template_key": "a_class_news", "channel": "email", "category": "marketing"}
    dry = await api.post("/segment-sends", json=request)
    assert dry.status_code == 200
    assert dry.json() == {
        "id": None,
        "dry_run": True,
        "customers": 2,
        "recipients": 1,
        "suppressed": {"no marketing consent": 1},
        "queued": 0,
    }
    assert len(smtp.messages) == 0
    unconfirmed = await api.post("/segment-sends", json={**request, "dry_run": False})
    assert unconfirmed.status_code == 409
    sent = await api.post("/segment-sends", json={**request, "dry_run": False, "expected_recipients": 1})
    assert sent.status_code == 200 and sent.json()["queued"] == 1
    await api.runtime.dispatcher.run_once()
    [mail] = smtp.messages
    assert mail["To"] == "s0@example.com" and "Unsubscribe: " in mail.get_content()
    bad = await api.post("/segment-sends", json={**request, "template_key": "payment_reminder"})
    assert bad.status_code == 422


async def test_retried_creates_with_an_idempotency_key_happen_once(api_both, smtp):
    """Templates, rules and segment sends: the same key and body answer the first result; another body is 422."""
    api = api_both
    feeder = EventFeeder(api.runtime)
    await feeder.feed(
        customer_registered("ik1", [{"contact_id": "kik1", "email": "ik1@example.com", "language": "en", "marketing_consent": True}])
    )
    await feeder.feed(event(CustomerScored(customer_id="ik1", abc_class="A", scored_at=T0)))
    template = {
        "key": "retry_news",
        "language": "en",
        "subject": "News for {{ customer_name }}",
        "body": "Dear {{ contact_name }}.",
        "variables": ["customer_name", "contact_name"],
    }
    rule = {
        "name": "retry-rule",
        "event_type": "ComplaintFiled",
        "template_key": "complaint_ack",
        "audience": "event_contact",
        "channel": "email",
        "category": "complaint_updates",
        "conditions": [],
    }
    for path, body in (("/templates", template), ("/rules", rule)):
        headers = {"Idempotency-Key": f"create{path}"}
        first = await api.post(path, json=body, headers=headers)
        again = await api.post(path, json=body, headers=headers)
        assert first.status_code == again.status_code == 201, first.text
        assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
        assert again.headers["location"] == first.headers["location"]
        assert (await api.get(first.headers["location"])).json()["id"] == first.json()["id"]
        other = await api.post(
            path, json=body | {"language": "zh-CN"} if path == "/templates" else body | {"channel": "sms"}, headers=headers
        )
        assert other.status_code == 422 and other.json()["type"] == "urn:crm:problem:idempotency-key-reused"
    assert [v["version"] for v in (await api.get("/templates/retry_news/versions")).json()] == [1]
    assert [r["id"] for r in (await api.get("/rules")).json() if r["name"] == "retry-rule"] == [first.json()["id"]]

    send = {
        "segment": {"abc_class": "A"},
        "template_key": "retry_news",
        "channel": "email",
        "category": "marketing",
        "dry_run": False,
        "expected_recipients": 1,
    }
    headers = {"Idempotency-Key": "segment-send-1"}
    sent = await api.post("/segment-sends", json=send, headers=headers)
    again = await api.post("/segment-sends", json=send, headers=headers)
    assert sent.status_code == again.status_code == 200, sent.text
    assert sent.json()["queued"] == 1 and again.content == sent.content
    await api.runtime.dispatcher.run_once()
    assert [m["To"] for m in smtp.messages] == ["ik1@example.com"]
    other = await api.post("/segment-sends", json=send | {"category": "service"}, headers=headers)
    assert other.status_code == 422


async def test_provider_receipts_and_inbox_tasks(api, provider, smtp):
    api.runtime.settings.provider_token = SecretStr("prov-token")
    feeder = EventFeeder(api.runtime)
    await feeder.feed(
        customer_registered("c9", [{"contact_id": "k9", "email": "k9@example.com", "language": "en"}], account_manager="am.x")
    )
    await feeder.feed(
        event(
            ComplaintFiled(
                complaint_id="x9",
                complaint_number="CP-9",
                customer_id="c9",
                category="delay",
                priority="P3",
                channel="web",
                contact_id="k9",
                filed_at=T0,
            )
        )
    )
    from crm_common.events.scoring import ChurnRiskRaised

    await feeder.feed(event(ChurnRiskRaised(customer_id="c9", risk_level="high", raised_at=T0)))
    await api.runtime.dispatcher.run_once()
    sent = next(d for d in (await api.get("/deliveries", params={"customer_id": "c9"})).json() if d["rule_name"] == "complaint-filed-ack")
    url = f"/deliveries/{sent['id']}/receipt"
    assert (await api.post(url, json={"status": "delivered"})).status_code == 403
    assert (await api.post(url, json={"status": "delivered"}, headers={"Authorization": "Bearer wrong"})).status_code == 403
    auth = {"Authorization": "Bearer prov-token"}
    delivered = await api.post(url, json={"status": "delivered"}, headers=auth)
    assert delivered.status_code == 200 and delivered.json()["status"] == "delivered"
    assert (await api.post(url, json={"status": "delivered"}, headers=auth)).json()["status"] == "delivered"  # idempotent
    bounced = await api.post(url, json={"status": "failed", "detail": "mailbox full"}, headers=auth)
    assert bounced.json()["status"] == "failed" and bounced.json()["reason"] == "provider receipt: mailbox full"
    assert (await api.post(url, json={"status": "delivered"}, headers=auth)).status_code == 409
    assert (await api.post("/deliveries/nope/receipt", json={"status": "delivered"}, headers=auth)).status_code == 404
    from sqlalchemy import select

    from crm_common.outbox import outbox_table

    async with api.runtime.db.sessions() as session:
        types = list((await session.scalars(select(outbox_table.c.event_type).order_by(outbox_table.c.id))).all())
    assert types.count("NotificationFailed") == 1
    [task] = (await api.get("/inbox", params={"assignee": "am.x"})).json()
    done = await api.post(f"/inbox/{task['id']}/done")
    assert done.status_code == 200 and done.json()["done_at"] is not None
    assert (await api.get("/inbox", params={"assignee": "am.x"})).json() == []
    assert len((await api.get("/inbox", params={"assignee": "am.x", "open_only": False})).json()) == 1


async def test_a_segment_send_with_an_impossible_count_or_channel_is_a_422(api_both):
    """A count beyond what the column holds, or a channel with control characters, is refused at the edge, never a 500."""
    request = {"segment": {"abc_class": "A"}, "template_key": "a_class_news", "category": "marketing", "dry_run": True}
    for body, field in (
        (request | {"channel": "email", "expected_recipients": 54735873268099110141952}, "expected_recipients"),
        (request | {"channel": "em\x1fail"}, "channel"),
    ):
        answer = await api_both.post("/segment-sends", json=body, headers={"Idempotency-Key": f"impossible-{field}"})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert field in answer.text


async def test_delivery_reasons_carry_a_message_key_with_parameters_beside_the_english_text(api_both, clock):
    """Why a message is held back reaches the console as a key with parameters (its zh-CN and en tables write it); the
    English text stays for readers that do not translate; a reason stored without a key is reported by its text."""
    api = api_both
    feeder = EventFeeder(api.runtime)
    quiet = {"timezone": "Asia/Shanghai", "quiet_hours_start": "22:00", "quiet_hours_end": "08:00"}
    await feeder.feed(
        customer_registered(
            "c5",
            [{"contact_id": "k-none", "name": "No Address", "language": "en"}, {"contact_id": "k-quiet", "email": "q@example.cn", **quiet}],
        )
    )
    clock.set(T0.replace(hour=15, minute=30))  # 23:30 in Shanghai: k-quiet's quiet hours
    for number, contact in (("CP-51", "k-none"), ("CP-52", "k-quiet")):
        filed = ComplaintFiled(
            complaint_id=number,
            complaint_number=number,
            customer_id="c5",
            category="delay",
            priority="P3",
            channel="web",
            contact_id=contact,
            filed_at=T0,
        )
        await feeder.feed(event(filed))
    await api.runtime.dispatcher.run_once()
    log = {d["contact_id"]: d for d in (await api.get("/deliveries", params={"customer_id": "c5"})).json()}

    none = log["k-none"]
    assert (none["status"], none["reason"]) == ("suppressed", "no address for channel preferred")
    assert (none["reason_key"], none["reason_params"]) == ("delivery.no_address", {"channel": "preferred"})
    assert [(e["detail"], e["detail_key"]) for e in none["log"]] == [("no address for channel preferred", "delivery.no_address")]
    held = log["k-quiet"]
    assert (held["status"], held["reason"], held["reason_key"], held["reason_params"]) == (
        "deferred",
        "quiet hours",
        "delivery.quiet_hours",
        {},
    )
    assert [e["detail_key"] for e in held["log"]] == [None, "delivery.quiet_hours"]  # queued by its rule, then held back

    report = (await api.get("/reports/notifications")).json()
    assert report["suppressed_by_reason_key"] == [{"key": "delivery.no_address", "text": "no address for channel preferred", "count": 1}]
    async with api.runtime.db.transaction() as session:  # as a row stored before reason keys
        await session.execute(update(Message).where(Message.id == none["id"]).values(reason_key=None, reason_params=None))
    report = (await api.get("/reports/notifications")).json()
    assert report["suppressed_by_reason_key"] == [{"key": None, "text": "no address for channel preferred", "count": 1}]
    assert report["suppressed_by_reason"] == {"no address for channel preferred": 1}  # the old field, for old readers
