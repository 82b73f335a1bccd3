"""Customer 360 (parallel, partial results with warnings), unified search, dashboard, merged OpenAPI."""

from __future__ import annotations

import time

from gateway_support import dashboard_events, down_transport, feed_read_models, role_headers, shipment_events, sleepy_transport


async def test_customer_360_combines_every_service(make_gateway):
    client, settings, app = await make_gateway()
    await feed_read_models(app.state.runtime, shipment_events("C1") + shipment_events("C2"))
    response = await client.get("/api/v1/customers/C1/360", headers=role_headers(settings, "agent"))
    assert response.status_code == 200
    body = response.json()
    assert body["profile"]["name"] == "Acme Cold Chain"
    assert body["tier"] == "key_account" and body["scores"]["credit_grade"] == "A"
    assert [c["id"] for c in body["open_complaints"]] == ["K1"]  # K3 is closed, K2 is another customer's
    shipments = body["recent_shipments"]  # the gateway's read model of logistics.orders, newest first
    assert [(s["order_id"], s["status"], s["on_time"]) for s in shipments] == [
        ("O-C1-2", "delayed", None),
        ("O-C1-1", "delivered", False),
        ("O-C1-0", "delivered", True),
    ]
    assert shipments[0]["tracking_number"] == "SFC12" and shipments[0]["delay_minutes"] == 240 and shipments[2]["amount"] == "1000.00"
    assert [n["customer_id"] for n in body["last_notifications"]] == ["C1"]
    assert body["warnings"] == [] and body["partial"] is False


async def test_customer_360_for_a_customer_token_uses_its_view_and_stays_its_own(gw):
    client, settings = gw
    body = (await client.get("/api/v1/customers/C1/360", headers=role_headers(settings, "customer"))).json()
    assert [c["id"] for c in body["open_complaints"]] == ["K1"]
    assert "priority" not in body["open_complaints"][0]  # the complaints service's customer view
    assert "Beta" not in str(body) and "K2" not in str(body)


async def test_customer_360_partial_when_a_service_is_down(fakes, make_gateway):
    client, settings, _ = await make_gateway(fakes.transports(complaints=down_transport()), upstream_retries=0)
    response = await client.get("/api/v1/customers/C1/360", headers=role_headers(settings, "agent"))
    assert response.status_code == 200
    body = response.json()
    assert body["partial"] is True
    assert body["open_complaints"] is None
    assert body["warnings"] == [{"source": "complaints", "status": 503, "detail": "The complaints service cannot be reached."}]
    assert body["profile"]["id"] == "C1" and body["tier"] == "key_account"


async def test_customer_360_sources_run_in_parallel_within_a_time_budget(fakes, make_gateway):
    slow = {name: sleepy_transport(fakes.apps[name], 0.3) for name in ("scoring", "complaints", "notifications")}
    slow["profile"] = sleepy_transport(fakes.apps["profile"], 0.3)  # four upstream calls + the local read model
    client, settings, _ = await make_gateway(fakes.transports(**slow))
    started = time.perf_counter()
    assert (await client.get("/api/v1/customers/C1/360", headers=role_headers(settings, "agent"))).json()["partial"] is False
    assert time.perf_counter() - started < 1.0  # five calls of 0.3 s each, at once

    client, settings, _ = await make_gateway(
        fakes.transports(notifications=sleepy_transport(fakes.apps["notifications"], 2.0)), aggregate_timeout_s=0.3
    )
    body = (await client.get("/api/v1/customers/C1/360", headers=role_headers(settings, "agent"))).json()
    assert body["warnings"][0]["source"] == "notifications" and body["warnings"][0]["status"] == 504
    assert body["profile"]["id"] == "C1" and body["recent_shipments"] == []


async def test_customer_360_missing_section_is_unavailable_not_a_warning(fakes, make_gateway):
    import httpx

    def not_scored(request: httpx.Request):  # the scoring service has not scored this customer yet
        return httpx.Response(404, json={"title": "Scores not found"})

    client, settings, _ = await make_gateway(fakes.transports(scoring=httpx.MockTransport(not_scored)))
    body = (await client.get("/api/v1/customers/C1/360", headers=role_headers(settings, "agent"))).json()
    assert body["scores"] is None and body["tier"] is None and body["unavailable"] == ["scores"]
    assert body["warnings"] == [] and body["partial"] is False and body["profile"]["id"] == "C1"


async def test_customer_360_unknown_customer_404(gw):
    client, settings = gw
    assert (await client.get("/api/v1/customers/NOPE/360", headers=role_headers(settings, "agent"))).status_code == 404


async def test_unified_search_by_phone_tracking_number_complaint_number_and_name(gw):
    client, settings = gw
    agent = role_headers(settings, "agent")
    by_phone = (await client.get("/api/v1/search", params={"q": "13900000002"}, headers=agent)).json()
    assert [c["id"] for c in by_phone["customers"]] == ["C2"] and [c["id"] for c in by_phone["complaints"]] == ["K2"]
    by_tracking = (await client.get("/api/v1/search", params={"q": "SF100"}, headers=agent)).json()
    assert [c["id"] for c in by_tracking["complaints"]] == ["K1"]
    by_number = (await client.get("/api/v1/search", params={"q": "CMP-2026-0002"}, headers=agent)).json()
    assert [c["id"] for c in by_number["complaints"]] == ["K2"]
    numeric_tracking = (await client.get("/api/v1/search", params={"q": "773012345678"}, headers=agent)).json()
    assert [c["id"] for c in numeric_tracking["complaints"]] == ["K1"] and numeric_tracking["warnings"] == []
    by_name = (await client.get("/api/v1/search", params={"q": "gamma"}, headers=agent)).json()
    assert [c["id"] for c in by_name["customers"]] == ["C3"]


async def test_dashboard_gathers_reports_and_tolerates_a_missing_one(fakes, make_gateway):
    client, settings, app = await make_gateway(fakes.transports(complaints=down_transport()), upstream_retries=0)
    await feed_read_models(app.state.runtime, dashboard_events())
    body = (await client.get("/api/v1/dashboard", headers=role_headers(settings, "admin"))).json()
    assert body["sections"]["pareto"]["classes"][0]["class"] == "A"
    assert body["sections"]["rfm"]["cells"] == [{"r": 3, "f": 3, "count": 1}, {"r": 4, "f": 4, "count": 1}, {"r": 5, "f": 5, "count": 1}]
    assert body["sections"]["rfm"]["segments"] == [{"segment": "loyal", "count": 2}, {"segment": "champions", "count": 1}]
    assert body["sections"]["tiers"]["tiers"] == [{"tier": "ordinary", "count": 2}, {"tier": "key_account", "count": 1}]
    assert [(k["class"], k["customers"]) for k in body["sections"]["abc"]["splits"]["three_way"]["classes"]] == [
        ("A", 1),
        ("B", 1),
        ("C", 1),
    ]
    assert body["sections"]["credit_churn"]["churn_risk"][2] == {"value": "high", "customers": 1, "share": 1 / 3}
    assert "scores" not in body["sections"]
    assert body["sections"]["complaints"] is None
    assert [w["source"] for w in body["warnings"]] == ["complaints"]
    # the gateway's own read models, fed from crm.scoring and crm.notifications (the 200-day-old move is outside the window)
    assert body["sections"]["tier_movements"]["movements"] == [
        {"from": "ordinary", "to": "key_account", "count": 2},
        {"from": "key_account", "to": "at_risk", "count": 1},
    ]
    assert body["sections"]["notifications"]["by_channel"]["sms"] == {"delivered": 25, "failed": 5}  # the service's own report
    assert body["unavailable"] == []


async def test_dashboard_falls_back_to_the_read_model_when_the_service_has_no_report(fakes, make_gateway):
    import httpx

    notifications = fakes.transports()["notifications"]

    class NoReport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            if request.url.path == "/reports/notifications":
                return httpx.Response(404, json={"title": "Not Found"})
            return await notifications.handle_async_request(request)

    client, settings, app = await make_gateway(fakes.transports(notifications=NoReport()))
    await feed_read_models(app.state.runtime, dashboard_events())
    body = (await client.get("/api/v1/dashboard", headers=role_headers(settings, "admin"))).json()
    assert body["sections"]["notifications"]["by_channel"] == [
        {"channel": "email", "sent": 5, "failed": 0, "delivery_rate": 1.0},
        {"channel": "sms", "sent": 3, "failed": 1, "delivery_rate": 0.75},
    ]
    assert body["warnings"] == [] and body["unavailable"] == []


async def test_dashboard_forwards_report_filters_to_each_scoring_report_source(fakes, make_gateway):
    client, settings, app = await make_gateway()
    query = {"tier": "key_account", "region": "华东", "period_start": "2026-01-01", "period_end": "2026-06-30", "limit": "7"}
    response = await client.get("/api/v1/dashboard", params=query, headers=role_headers(settings, "admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    forwarded = {k: v for k, v in query.items() if k != "limit"}  # only the reports' filters go on
    scoring = fakes.recorders["scoring"]
    for path in ("/reports/pareto", "/reports/rfm", "/reports/tiers", "/reports/matrices", "/reports/abc", "/reports/credit-churn"):
        assert scoring.last(path)[2] == forwarded, path
    assert fakes.recorders["complaints"].last("/reports/complaints")[2] == {}
    assert body["sections"]["tiers"]["tiers"] == [{"tier": "key_account", "count": 1}]  # the fake filters by tier
    assert [(k["class"], k["customers"]) for k in body["sections"]["pareto"]["classes"] if k["customers"]] == [("A", 1)]
    assert body["filters"] == forwarded
    assert body["filtered_sections"] == ["pareto", "rfm", "tiers", "matrices", "abc", "credit_churn"]


async def test_dashboard_answers_the_services_422_for_a_rejected_filter(make_gateway):
    client, settings, app = await make_gateway()
    query = {"period_start": "2026-06-30", "period_end": "2026-01-01"}
    response = await client.get("/api/v1/dashboard", params=query, headers=role_headers(settings, "admin"))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "period_start is after period_end."  # the scoring service's words


async def test_dashboard_read_models_ignore_redelivered_events(make_gateway):
    client, settings, app = await make_gateway()
    events = dashboard_events()
    await feed_read_models(app.state.runtime, events)
    from crm_common.consumer import Delivery, InboxProcessor
    from crm_common.events import encode_envelope, make_event
    from crm_gateway.dashboard.handlers import DashboardReadModel

    # the same envelope twice (a redelivery) counts once
    envelope = make_event(events[0], key="C1", producer="test")
    processor = InboxProcessor(app.state.runtime.db, DashboardReadModel(), None)
    delivery = Delivery("crm.scoring", 0, 99, b"C1", encode_envelope(envelope))
    await processor.process([delivery])
    await processor.process([delivery])
    body = (await client.get("/api/v1/dashboard", headers=role_headers(settings, "admin"))).json()
    assert body["sections"]["tier_movements"]["movements"][0] == {"from": "ordinary", "to": "key_account", "count": 3}


async def test_merged_openapi_prefixes_routed_paths_and_tolerates_a_missing_upstream(fakes, make_gateway):
    client, settings, _ = await make_gateway(fakes.transports(notifications=down_transport()), upstream_retries=0)
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    paths = spec["paths"]
    assert "/api/v1/customers/{customer_id}" in paths and paths["/api/v1/customers/{customer_id}"]["get"]["x-upstream"] == "profile"
    assert "/api/v1/complaints/{complaint_id}/timeline" in paths
    assert "/api/v1/reports/pareto" in paths
    assert "/api/v1/events" in paths and "/api/v1/customers/{customer_id}/360" in paths  # the gateway's own
    assert not any(p.startswith("/api/v1/preferences") for p in paths)  # notifications is down
    assert spec["x-unavailable"] == ["notifications"]
    assert "bearer" in spec["components"]["securitySchemes"]
    operation_ids = [op["operationId"] for item in paths.values() for m, op in item.items() if isinstance(op, dict) and "operationId" in op]
    assert len(operation_ids) == len(set(operation_ids))
