"""Service levels (issue 20): the v2 order events, invoice corrections and proof-of-delivery returns reach the
fact tables; the monthly record per customer is computed from them, stored and served as a trend."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from crm_common.events import decode_envelope
from crm_common.events.complaints import ComplaintFiled, ComplaintResolved
from crm_common.events.customers import CustomerErased, CustomerMerged, CustomerRegistered
from crm_common.events.logistics import (
    InvoiceCorrected,
    OrderCancelled,
    OrderCreated,
    OrderCreatedV2,
    OrderDelivered,
    OrderDeliveredV2,
    OrderShipped,
    OrderShippedV2,
    ProofOfDeliveryReturned,
    ShipmentDamaged,
    ShipmentLost,
)
from crm_common.outbox import outbox_table
from crm_devbroker.testing import edge_auth
from crm_scoring.main import create_app
from crm_scoring.scoring.models import customer_scores
from crm_scoring.service_levels import service
from crm_scoring.service_levels.measures import monthly_records
from crm_scoring.service_levels.models import service_level_breaches, service_level_months
from crm_scoring.service_levels.targets import missed_targets
from scoring_support import AS_OF, clock, event, feed, processor, scoring_db, settings_for

UTC = dt.UTC
JUNE = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
H = dt.timedelta(hours=1)


def _order(order_id: str, customer: str, at: dt.datetime, *, urgent=False, ordered=10, pickup_by=None, deliver_by=None):
    return OrderCreatedV2(
        order_id=order_id,
        customer_id=customer,
        order_date=at,
        amount=Decimal("100"),
        service_type="trunk",
        promised_pickup_at=pickup_by,
        promised_delivery_at=deliver_by,
        quantity_ordered=ordered,
        urgent=urgent,
    )


def june_history(customer: str = "c1") -> list:
    """Four June orders of one customer with known outcomes, one cancelled, one v1 order, a complaint, a correction."""
    t = JUNE
    payloads = [
        # o1: picked up and delivered on time, full quantity, documents back on time
        _order(f"{customer}-o1", customer, t, ordered=10, pickup_by=t + 4 * H, deliver_by=t + 48 * H),
        OrderShippedV2(order_id=f"{customer}-o1", customer_id=customer, shipped_at=t + 3 * H, quantity_shipped=10),
        OrderDeliveredV2(order_id=f"{customer}-o1", customer_id=customer, delivered_at=t + 40 * H, pod_due_at=t + 100 * H),
        ProofOfDeliveryReturned(order_id=f"{customer}-o1", customer_id=customer, returned_at=t + 90 * H),
        # o2: urgent, picked up late, delivered late, short-shipped 6 of 10, damaged, documents late
        _order(f"{customer}-o2", customer, t + H, urgent=True, ordered=10, pickup_by=t + 2 * H, deliver_by=t + 24 * H),
        OrderShippedV2(order_id=f"{customer}-o2", customer_id=customer, shipped_at=t + 5 * H, quantity_shipped=6),
        OrderDeliveredV2(order_id=f"{customer}-o2", customer_id=customer, delivered_at=t + 30 * H, pod_due_at=t + 80 * H),
        ProofOfDeliveryReturned(order_id=f"{customer}-o2", customer_id=customer, returned_at=t + 200 * H),
        ShipmentDamaged(order_id=f"{customer}-o2", customer_id=customer, reported_at=t + 30 * H),
        # o3: urgent, lost, never delivered; its pickup promise passed without a pickup
        _order(f"{customer}-o3", customer, t + 2 * H, urgent=True, ordered=5, pickup_by=t + 3 * H, deliver_by=t + 20 * H),
        ShipmentLost(order_id=f"{customer}-o3", customer_id=customer, reported_at=t + 50 * H),
        # o4: a v1 order delivered on its v1 promise: no pickup promise, no quantities
        OrderCreated(order_id=f"{customer}-o4", customer_id=customer, order_date=t + 3 * H, amount=Decimal("50")),
        OrderShipped(order_id=f"{customer}-o4", customer_id=customer, shipped_at=t + 4 * H),
        OrderDelivered(order_id=f"{customer}-o4", customer_id=customer, delivered_at=t + 20 * H, promised_at=t + 24 * H),
        # o5: cancelled: not measured
        _order(f"{customer}-o5", customer, t + 4 * H, ordered=3, pickup_by=t + 5 * H),
        OrderCancelled(order_id=f"{customer}-o5", customer_id=customer, cancelled_at=t + 4.5 * H),
        ComplaintFiled(
            complaint_id=f"k-{customer}",
            complaint_number="CMP-1",
            customer_id=customer,
            category="damage",
            priority="P2",
            channel="web",
            filed_at=t + 31 * H,
        ),
        ComplaintResolved(
            complaint_id=f"k-{customer}", complaint_number="CMP-1", customer_id=customer, resolved_at=t + 41 * H, outcome="refund"
        ),
        InvoiceCorrected(
            correction_id=f"cn-{customer}",
            invoice_id=f"inv-{customer}",
            customer_id=customer,
            previous_amount=Decimal("100"),
            amount=Decimal("90"),
            corrected_at=t + 60 * H,
        ),
    ]
    return [event(p, customer, at=t) for p in payloads]


EXPECTED_JUNE = {
    "orders": 4,
    "on_time_pickup_pct": pytest.approx(100 / 3, abs=1e-3),  # o1 on time; o2 late; o3 past its promise, not picked up
    "on_time_delivery_pct": 50.0,  # o1, o4 on time; o2 late; o3 past its promise, not delivered
    "order_completion_pct": 75.0,
    "damage_rate_pct": 25.0,
    "loss_rate_pct": 25.0,
    "fill_rate_pct": 80.0,  # (10 + 6) of (10 + 10): o3 never shipped, o4 carries no quantities
    "urgent_orders": 2,
    "urgent_completion_pct": 0.0,
    "documents_on_time_pct": 50.0,
    "billing_corrections": 1,
    "complaints": 1,
    "complaints_per_100_orders": 25.0,
    "mean_resolution_hours": 10.0,
}


def _payload_rows(envelopes) -> tuple[list, list, list]:
    """The fact rows the measures need, built straight from the payloads (the oracle of the stored path)."""
    facts: dict[str, dict] = {}
    complaints: dict[str, dict] = {}
    corrections = []
    for e in envelopes:
        p = e.parsed()
        if isinstance(p, InvoiceCorrected):
            corrections.append({"customer_id": p.customer_id, "corrected_at": p.corrected_at})
        elif isinstance(p, (ComplaintFiled, ComplaintResolved)):
            row = complaints.setdefault(p.complaint_id, {"customer_id": p.customer_id})
            row.update(filed_at=p.filed_at) if isinstance(p, ComplaintFiled) else row.update(resolved_at=p.resolved_at)
        elif hasattr(p, "order_id"):
            row = facts.setdefault(p.order_id, {"customer_id": p.customer_id})
            for name, value in p.model_dump().items():
                target = {"returned_at": "pod_returned_at", "due_at": "pod_return_due_at", "urgent": "urgent"}.get(name, name)
                if value is not None:
                    row[target] = value
            if isinstance(p, ShipmentDamaged):
                row["damaged"] = 1
            if isinstance(p, ShipmentLost):
                row["lost"] = 1
    return list(facts.values()), list(complaints.values()), corrections


def test_measures_of_a_known_month():
    records = monthly_records(*_payload_rows(june_history()), AS_OF)
    assert set(records) == {("c1", "2026-06")}
    assert records[("c1", "2026-06")] == EXPECTED_JUNE


def test_a_promise_still_ahead_is_not_judged():
    order = {
        "customer_id": "c",
        "order_date": JUNE,
        "promised_pickup_at": JUNE + 5 * H,
        "promised_delivery_at": JUNE + 50 * H,
        "urgent": 1,
        "quantity_ordered": 4,
    }
    record = monthly_records([order], [], [], JUNE + H)[("c", "2026-06")]
    assert record["on_time_pickup_pct"] is None and record["on_time_delivery_pct"] is None
    assert record["urgent_completion_pct"] == 0.0 and record["fill_rate_pct"] is None  # not delivered yet; nothing shipped yet
    late = monthly_records([order], [], [], JUNE + 10 * H)[("c", "2026-06")]
    assert late["on_time_pickup_pct"] == 0.0 and late["on_time_delivery_pct"] is None


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_events_to_stored_record_and_trend(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "service_levels")
    proc, dead = processor(db)
    may = _order("m1", "c1", dt.datetime(2026, 5, 20, tzinfo=UTC), deliver_by=dt.datetime(2026, 5, 22, tzinfo=UTC))
    await feed(proc, [*june_history("c1"), event(may, "c1"), *june_history("c2")[:4]], batch_sizes=(3, 7))
    assert dead.sent == []
    async with db.sessions() as session:
        stored = {(r["customer_id"], r["month"]): dict(r) for r in (await session.execute(select(service_level_months))).mappings()}
    assert set(stored) == {("c1", "2026-06"), ("c1", "2026-05"), ("c2", "2026-06")}
    june = {k: stored[("c1", "2026-06")][k] for k in EXPECTED_JUNE}
    assert june == EXPECTED_JUNE
    assert stored[("c1", "2026-05")]["on_time_delivery_pct"] == 0.0  # promised 22 May, never delivered by 30 June
    assert stored[("c2", "2026-06")]["orders"] == 1 and stored[("c2", "2026-06")]["documents_on_time_pct"] == 100.0

    # the monthly job recomputes the whole base's month from the facts: the same June records
    async with db.transaction() as session:
        assert await service.compute_month(session, "2026-06", AS_OF, settings_for()) == 2
    async with db.sessions() as session:
        again = {
            k: v
            for k, v in (
                await session.execute(
                    select(service_level_months).where(
                        service_level_months.c.customer_id == "c1", service_level_months.c.month == "2026-06"
                    )
                )
            )
            .mappings()
            .one()
            .items()
        }
    assert {k: again[k] for k in EXPECTED_JUNE} == EXPECTED_JUNE

    # merging c2 into c1 moves its June order into c1's record; erasing c1 forgets its records
    await feed(proc, [event(CustomerMerged(merged_id="c2", survivor_id="c1", merged_at=AS_OF), "c1")])
    async with db.sessions() as session:
        rows = {(r.customer_id, r.month): r.orders for r in (await session.execute(select(service_level_months))).all()}
    assert rows == {("c1", "2026-06"): 5, ("c1", "2026-05"): 1}
    await feed(proc, [event(CustomerErased(customer_id="c1", erased_at=AS_OF), "c1")])
    async with db.sessions() as session:
        assert (await session.execute(select(service_level_months))).all() == []
    await db.dispose()


async def test_trend_endpoint_and_bad_input(database_factory):
    db = await scoring_db(database_factory, "sqlite", "service_levels_api")
    proc, _ = processor(db)
    await feed(proc, june_history("c1"))
    await db.dispose()
    app = create_app(settings_for(db.url), start_background=False, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoring", auth=edge_auth(app)) as client:
        body = (await client.get("/service-levels/c1")).json()
        assert [m["month"] for m in body["months"]] == [
            f"{y}-{m:02d}"
            for y, m in [(2025, 7), (2025, 8), (2025, 9), (2025, 10), (2025, 11), (2025, 12)] + [(2026, m) for m in range(1, 7)]
        ]
        assert body["months"][-1]["on_time_delivery_pct"] == 50.0 and body["months"][0]["orders"] == 0
        short = (await client.get("/service-levels/c1", params={"months": 2, "until": "2026-07"})).json()["months"]
        assert [m["month"] for m in short] == ["2026-06", "2026-07"]
        for params in ({"months": 0}, {"months": 61}, {"until": "2026-13"}, {"until": "June"}):
            bad = await client.get("/service-levels/c1", params=params)
            assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json"), params
        computed = await client.post("/admin/service-levels/compute", json={"month": "2026-06"})
        assert computed.status_code == 200 and computed.json() == {"month": "2026-06", "records": 1}
        refused = await client.post("/admin/service-levels/compute", json={"month": "2026-6"})
        assert refused.status_code == 422
    await app.state.runtime.stop()


def test_missed_targets_floors_ceilings_and_unmeasured():
    targets = {"on_time_delivery_pct": 95, "damage_rate_pct": 1, "fill_rate_pct": 98, "billing_corrections": 0}
    record = {"on_time_delivery_pct": 94.9, "damage_rate_pct": 1.0, "fill_rate_pct": None, "billing_corrections": 1}
    assert missed_targets(record, targets) == [
        {"measure": "on_time_delivery_pct", "target": 95.0, "actual": 94.9},
        {"measure": "billing_corrections", "target": 0.0, "actual": 1.0},
    ]  # damage exactly at its ceiling is kept; an unmeasured fill rate misses nothing
    assert missed_targets({"on_time_delivery_pct": 95.0}, targets) == []


def test_targets_outside_the_measures_or_range_are_refused():
    with pytest.raises(ValueError, match="unknown measures"):
        settings_for(service_level_targets={"small": {"on_time": 90}})
    with pytest.raises(ValueError, match="out of range"):
        settings_for(service_level_targets={"small": {"on_time_delivery_pct": 101}})


async def _breaches(db) -> list:
    async with db.sessions() as session:
        bodies = (await session.scalars(select(outbox_table.c.body).order_by(outbox_table.c.id))).all()
    return [e.parsed() for e in map(decode_envelope, bodies) if e.type == "ServiceLevelBreached"]


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_a_closed_month_that_misses_its_targets_is_announced_once(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "service_level_breach")
    # the same targets for every tier, so the test does not depend on the tier the scores give c1
    settings = settings_for(
        db.url,
        service_level_targets={
            tier: {"on_time_delivery_pct": 90, "mean_resolution_hours": 24} for tier in ("key_account", "ordinary", "small")
        },
    )
    july = dt.datetime(2026, 7, 2, tzinfo=UTC)
    in_june, _ = processor(db, settings)  # clock 30 June: June is still open, nothing is judged against the targets
    await feed(in_june, june_history("c1"))
    assert await _breaches(db) == []

    proc, dead = processor(db, settings, clock=lambda: july)
    await feed(proc, [event(OrderCreatedV2(order_id="c1-j1", customer_id="c1", order_date=july, amount=Decimal("10")), "c1")])
    first = await _breaches(db)
    assert [(b.customer_id, b.month) for b in first] == [("c1", "2026-06")]
    assert [(m.measure, m.target, m.actual) for m in first[0].missed] == [("on_time_delivery_pct", 90.0, 50.0)]
    assert first[0].summary == "on_time_delivery_pct 50 (target >= 90)"
    # the breach feeds c1's satisfaction (the measured month missed a target) and is a churn signal
    async with db.sessions() as session:
        detail = (await session.execute(select(customer_scores.c.detail).where(customer_scores.c.customer_id == "c1"))).scalar_one()
    assert detail["satisfaction"]["inputs"]["service_level_months"] == 1 and detail["satisfaction"]["inputs"]["service_level_breaches"] == 1
    assert detail["satisfaction"]["inputs"]["components"]["service_levels"] == 0.0
    assert "1 of 1 measured months missed a service-level target" in detail["satisfaction"]["explanation"]
    assert "service_level_breached" in detail["churn_risk"]["inputs"]["signals"] and detail["churn_risk"]["value"] != "low"

    # another July event of c1, a May order that missed its promise (May is not the last closed month: not announced),
    # and a late June complaint resolved in time (June misses the same target): nothing new
    may = _order("c1-m1", "c1", dt.datetime(2026, 5, 20, tzinfo=UTC), deliver_by=dt.datetime(2026, 5, 22, tzinfo=UTC))
    quick = ComplaintFiled(
        complaint_id="k-quick",
        complaint_number="CMP-2",
        customer_id="c1",
        category="delay",
        priority="P3",
        channel="web",
        filed_at=JUNE + 300 * H,
    )
    await feed(
        proc,
        [
            event(OrderShipped(order_id="c1-j1", customer_id="c1", shipped_at=july), "c1"),
            event(may, "c1"),
            event(quick, "c1"),
            event(
                ComplaintResolved(
                    complaint_id="k-quick", complaint_number="CMP-2", customer_id="c1", outcome="ok", resolved_at=JUNE + 310 * H
                ),
                "c1",
            ),
        ],
    )
    assert len(await _breaches(db)) == 1
    # a late June complaint that took 100 hours: the mean resolution time misses its target too, announced again
    slow = ComplaintFiled(
        complaint_id="k-slow",
        complaint_number="CMP-3",
        customer_id="c1",
        category="delay",
        priority="P3",
        channel="web",
        filed_at=JUNE + 400 * H,
    )
    await feed(
        proc,
        [
            event(slow, "c1"),
            event(
                ComplaintResolved(
                    complaint_id="k-slow", complaint_number="CMP-3", customer_id="c1", outcome="ok", resolved_at=JUNE + 500 * H
                ),
                "c1",
            ),
        ],
    )
    again = await _breaches(db)
    assert len(again) == 2 and [m.measure for m in again[1].missed] == ["on_time_delivery_pct", "mean_resolution_hours"]
    async with db.sessions() as session:
        assert (await session.execute(select(service_level_breaches.c.customer_id, service_level_breaches.c.month))).all() == [
            ("c1", "2026-06")
        ]
    assert dead.sent == []
    await db.dispose()


async def test_the_service_level_report_ranks_the_whole_month_and_weights_the_trend_by_orders(database_factory):
    db = await scoring_db(database_factory, "sqlite", "service_levels_report")
    proc, _ = processor(db)
    await feed(proc, [*june_history("c1"), *june_history("c2")[:4]])
    await db.dispose()
    app = create_app(settings_for(db.url), start_background=False, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoring", auth=edge_auth(app)) as client:
        report = (await client.get("/reports/service-levels", params={"month": "2026-06", "trend_months": 2})).json()
        assert report["customers"] == 2 and [r["customer_id"] for r in report["worst"]] == ["c1", "c2"]  # 50% before 100%
        june = report["trend"][-1]
        assert (june["month"], june["customers"], june["orders"]) == ("2026-06", 2, 5)
        assert june["on_time_delivery_pct"] == pytest.approx((50 * 4 + 100 * 1) / 5)  # order-weighted
        assert report["trend"][0] == {
            "month": "2026-05",
            "customers": 0,
            "orders": 0,
            "billing_corrections": 0,
            "complaints": 0,
            **{m: None for m in june if m.endswith("_pct") or m in ("complaints_per_100_orders", "mean_resolution_hours")},
        }
        damage = (await client.get("/reports/service-levels", params={"month": "2026-06", "measure": "damage_rate_pct", "worst": 1})).json()
        assert [r["customer_id"] for r in damage["worst"]] == ["c1"] and damage["customers"] == 2  # a ceiling: the highest first
        csv_answer = await client.get("/reports/service-levels.csv", params={"month": "2026-06"})
        assert csv_answer.status_code == 200 and csv_answer.headers["content-type"].startswith("text/csv")
        lines = csv_answer.text.strip().splitlines()
        assert lines[0].startswith("customer_id,tier,month,orders,") and [line.split(",")[0] for line in lines[1:]] == ["c1", "c2"]
        for params in (
            {"month": "2026-13"},
            {},
            {"month": "2026-06", "measure": "price"},
            {"month": "2026-06", "tier": "gold"},
            {"month": "2026-06", "worst": 0},
        ):
            bad = await client.get("/reports/service-levels", params=params)
            assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json"), params
    await app.state.runtime.stop()


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_a_month_outside_the_plausible_window_is_refused_naming_the_field(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "service_levels_window")
    await db.dispose()
    app = create_app(settings_for(db.url), start_background=False, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoring", auth=edge_auth(app)) as client:
        too_late = f"{dt.date.today().year + 2}-01"
        for month in ("0000-01", "1999-12", too_late, "9999-12"):
            answers = {
                "until": await client.get("/service-levels/c1", params={"until": month}),
                "report": await client.get("/reports/service-levels", params={"month": month}),
                "csv": await client.get("/reports/service-levels.csv", params={"month": month}),
                "compute": await client.post("/admin/service-levels/compute", json={"month": month}),
            }
            for name, answer in answers.items():
                assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/problem+json"), (month, name)
                field = "until" if name == "until" else "month"
                assert any(e["loc"][-1] == field and e["type"] == "month_out_of_window" for e in answer.json()["errors"]), answer.json()
        earliest = await client.get("/reports/service-levels", params={"month": "2000-01"})
        assert earliest.status_code == 200 and earliest.json()["customers"] == 0
    await app.state.runtime.stop()


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"], indirect=True)
async def test_the_service_level_report_takes_the_management_reports_filters(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind, "service_levels_filters")
    proc, _ = processor(db)
    profiles = [
        event(CustomerRegistered(customer_id=c, name=c, region=region, industry=industry, account_manager=manager), c)
        for c, region, industry, manager in (("c1", "North", "retail", "am-1"), ("c2", "South", "food", "am-2"))
    ]
    express = OrderCreatedV2(order_id="c2-x", customer_id="c2", order_date=JUNE, amount=Decimal("10"), service_type="express")
    await feed(proc, [*profiles, *june_history("c1"), *june_history("c2")[:4], event(express, "c2")])
    await db.dispose()
    app = create_app(settings_for(db.url), start_background=False, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoring", auth=edge_auth(app)) as client:

        async def customers(**params) -> list[str]:
            answer = await client.get("/reports/service-levels", params={"month": "2026-06", **params})
            assert answer.status_code == 200, answer.text
            return [r["customer_id"] for r in answer.json()["worst"]]

        assert await customers() == ["c1", "c2"]  # c1 50% on time, c2 100%
        assert await customers(region="North") == ["c1"]
        assert await customers(industry="food") == ["c2"]
        assert await customers(account_manager="am-1") == ["c1"]
        assert await customers(service_type="express") == ["c2"]
        assert await customers(service_type="cold_chain") == []
        assert await customers(region="North", account_manager="am-2") == []
        report = (await client.get("/reports/service-levels", params={"month": "2026-06", "region": "South"})).json()
        assert report["filters"] == {"region": "South"} and report["trend"][-1]["customers"] == 1
        period = (
            await client.get(
                "/reports/service-levels", params={"month": "2026-06", "period_start": "2026-04-10", "period_end": "2026-06-02"}
            )
        ).json()
        assert [m["month"] for m in period["trend"]] == ["2026-04", "2026-05", "2026-06"]
        csv_lines = (
            (await client.get("/reports/service-levels.csv", params={"month": "2026-06", "industry": "retail"})).text.strip().splitlines()
        )
        assert [line.split(",")[0] for line in csv_lines[1:]] == ["c1"]
        for params in (
            {"period_start": "2026-01-01"},
            {"period_start": "2026-06-01", "period_end": "2026-01-01"},
            {"period_start": "2000-01-01", "period_end": "2026-06-30"},  # longer than the trend shows
            {"region": ""},
            {"service_type": "rocket"},
        ):
            bad = await client.get("/reports/service-levels", params={"month": "2026-06", **params})
            assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json"), params
    await app.state.runtime.stop()
