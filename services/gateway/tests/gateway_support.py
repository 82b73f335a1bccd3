"""Fake upstream services (small FastAPI apps with in-memory data) and helpers for the gateway tests.

The fakes follow the HTTP contract in docs/architecture.md. Some of them deliberately IGNORE the
`customer_id` filter and answer with a customer view that has no customer_id, so the tests prove
that the gateway's own object-level checks hold whatever the upstream does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request

from crm_common.migrations import upgrade
from crm_devbroker.testing import RefusingDeadLetters
from crm_gateway.auth import mint_token

GATEWAY_DIR = Path(__file__).resolve().parents[1]
ALEMBIC_INI = GATEWAY_DIR / "alembic.ini"

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)

CUSTOMERS = {
    "C1": {
        "id": "C1",
        "name": "Acme Cold Chain",
        "phone": "13800000001",
        "account_manager": "am-1",
        "status": "active",
        "industry": "food",
    },
    "C2": {
        "id": "C2",
        "name": "Beta Electronics",
        "phone": "13900000002",
        "account_manager": "am-2",
        "status": "active",
        "industry": "electronics",
    },
    "C3": {"id": "C3", "name": "Gamma Retail", "phone": "13700000003", "account_manager": "am-1", "status": "active", "industry": "retail"},
}
COMPLAINTS = {
    "K1": {
        "id": "K1",
        "number": "CMP-2026-0001",
        "customer_id": "C1",
        "category": "delay",
        "status": "in_progress",
        "priority": "high",
        "tracking_numbers": ["SF100", "773012345678"],
        "description": "late",
    },
    "K2": {
        "id": "K2",
        "number": "CMP-2026-0002",
        "customer_id": "C2",
        "category": "damage",
        "status": "new",
        "priority": "normal",
        "tracking_numbers": ["SF200"],
        "description": "broken",
    },
    "K3": {
        "id": "K3",
        "number": "CMP-2026-0003",
        "customer_id": "C1",
        "category": "billing",
        "status": "closed",
        "priority": "low",
        "tracking_numbers": [],
        "description": "invoice",
    },
}


def customer_view(complaint: dict) -> dict:
    """Like the complaints service's customer view: no customer_id, team, agent or priority."""
    return {k: v for k, v in complaint.items() if k not in ("customer_id", "priority")}


class Recorder:
    """What each fake upstream received: (method, path, query, headers)."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict, dict]] = []

    def record(self, request: Request) -> None:
        self.requests.append((request.method, request.url.path, dict(request.query_params), dict(request.headers)))

    def last(self, path_prefix: str = "") -> tuple[str, str, dict, dict]:
        return [r for r in self.requests if r[1].startswith(path_prefix)][-1]


def _app(name: str, recorder: Recorder) -> FastAPI:
    app = FastAPI(title=f"fake {name}")

    @app.middleware("http")
    async def _record(request: Request, call_next):
        recorder.record(request)
        return await call_next(request)

    return app


def fake_profile(recorder: Recorder, extra: dict | None = None) -> FastAPI:
    app = _app("profile", recorder)
    customers = {k: dict(v) for k, v in CUSTOMERS.items()}
    customers.update({k: dict(v) for k, v in (extra or {}).items()})

    @app.get("/customers")
    async def list_customers():
        return {"items": list(customers.values()), "next_cursor": None}

    @app.get("/customers/search")
    async def search(q: str | None = None, phone: str | None = None):
        items = [c for c in customers.values() if (phone and c["phone"] == phone) or (q and q.lower() in c["name"].lower())]
        return {"items": items, "next_cursor": None}

    @app.get("/customers/{customer_id}")
    async def get_customer(customer_id: str):
        if customer_id not in customers:
            raise HTTPException(404, "Customer not found")
        return customers[customer_id]

    @app.patch("/customers/{customer_id}")
    async def patch_customer(customer_id: str, request: Request):
        customers[customer_id].update(await request.json())
        return customers[customer_id]

    @app.get("/customers/{customer_id}/contacts")
    async def contacts(customer_id: str):
        return [{"id": "P1", "customer_id": customer_id, "phone": customers[customer_id]["phone"]}]

    @app.post("/customers/{customer_id}/interactions", status_code=201)
    async def interaction(customer_id: str, request: Request):
        return {"id": "I1", "customer_id": customer_id, **(await request.json())}

    return app


def fake_scoring(recorder: Recorder) -> FastAPI:
    """The scoring service's shapes: ScoreSummary/ScoreDetail, the Pareto report (classes + curve)."""
    app = _app("scoring", recorder)

    def score(cid: str) -> dict:
        n = int(cid[1:])
        return {
            "customer_id": cid,
            "tier": "key_account" if n == 1 else "ordinary",
            "abc_class": "ABC"[n - 1],
            "rfm_r": 6 - n,
            "rfm_f": 6 - n,
            "rfm_m": 5,
            "rfm_segment": "champions" if n == 1 else "loyal",
            "credit_grade": "A" if n < 3 else "C",
            "churn_risk": "low" if n < 3 else "high",
            "current_value": 90.0 - n,
            "potential_value": 50.0,
            "loyalty": 0.8,
            "satisfaction": 0.7,
            "revenue_12m": 1000.0 * (4 - n),
            "computed_at": NOW.isoformat(),
        }

    @app.get("/scores")
    async def scores(limit: int = 50):
        return {"items": [score(c) for c in CUSTOMERS], "next_cursor": None}

    @app.get("/scores/{customer_id}")
    async def get_score(customer_id: str):
        if customer_id not in CUSTOMERS:
            raise HTTPException(404, "Scores not found")
        return {**score(customer_id), "explanations": {}, "history": []}

    def filtered(tier: str | None = None, period_start: dt.date | None = None, period_end: dt.date | None = None) -> list[dict]:
        """The scores of the customers the report's filters keep (tier only; crm_scoring.reports.filters' period checks)."""
        if (period_start is None) != (period_end is None):
            raise HTTPException(422, "A period needs both period_start and period_end.")
        if period_start is not None and period_end is not None and period_start > period_end:
            raise HTTPException(422, "period_start is after period_end.")
        return [score(c) for c in CUSTOMERS if tier in (None, score(c)["tier"])]

    @app.get("/reports/rfm")
    async def rfm(rows: list[dict] = Depends(filtered)):
        cells = Counter((r["rfm_r"], r["rfm_f"]) for r in rows)
        segments = Counter(r["rfm_segment"] for r in rows)
        return {
            "customers": len(rows),
            "cells": [{"r": r, "f": f, "count": n} for (r, f), n in sorted(cells.items())],
            "segments": [{"segment": s, "count": n} for s, n in segments.most_common()],
        }

    @app.get("/reports/tiers")
    async def tiers(rows: list[dict] = Depends(filtered)):
        counts = Counter(r["tier"] for r in rows)
        return {"customers": len(rows), "tiers": [{"tier": t, "count": n} for t, n in counts.most_common()]}

    @app.get("/reports/matrices")
    async def matrices(_: list[dict] = Depends(filtered)):  # static figures; the period checked as scoring does
        cells = [("important", 1, 0.7), ("medium", 1, 0.2), ("big", 1, 0.1), ("small", 0, 0.0)]
        current_potential = {"customers": 3, "cells": [{"cell": c, "customers": n, "revenue_share": share} for c, n, share in cells]}
        return {"filters": {}, "matrices": {"current_potential": current_potential}}

    @app.get("/reports/abc")
    async def abc(_: list[dict] = Depends(filtered)):  # static figures; the period checked as scoring does
        def split(classes: str) -> dict:  # C1 brings 3,000, C2 2,000, C3 1,000: one customer per class, then empty ones
            values = {"A": 3000.0, "B": 2000.0, "C": 1000.0}
            rows = [
                {"class": k, "customers": int(k in values), "revenue": values.get(k, 0.0), "revenue_share": values.get(k, 0.0) / 6000}
                for k in classes
            ]
            return {"classes": rows}

        ten_way = [
            {"class": d, "customers": int(d in (1, 4, 7)), "revenue_share": {1: 0.5, 4: 0.333333, 7: 0.166667}.get(d, 0.0)}
            for d in range(1, 11)
        ]
        return {"customers": 3, "splits": {"three_way": split("ABC"), "four_way": split("ABCD"), "ten_way": {"classes": ten_way}}}

    @app.get("/reports/credit-churn")
    async def credit_churn(rows: list[dict] = Depends(filtered)):
        grades, risks = Counter(r["credit_grade"] for r in rows), Counter(r["churn_risk"] for r in rows)
        moved = {"improved": 1, "worsened": 2, "transitions": []}
        return {
            "customers": len(rows),
            "credit_grades": [{"value": g, "customers": grades[g], "share": grades[g] / max(len(rows), 1)} for g in ("A", "B", "C", "D")],
            "churn_risk": [{"value": r, "customers": risks[r], "share": risks[r] / max(len(rows), 1)} for r in ("low", "medium", "high")],
            "movements": {"period_start": "2026-08-23", "period_end": "2026-11-20", "credit_grade": moved, "churn_risk": moved},
        }

    @app.get("/reports/service-levels")
    async def service_levels(month: str, measure: str = "on_time_delivery_pct", worst: int = 20):
        # the report's shape (crm_scoring.service_levels.reports): twelve months ending with `month`, one without records
        year, last = int(month[:4]), int(month[5:])
        months = [f"{year + (last - 12 + i) // 12}-{(last - 12 + i) % 12 + 1:02d}" for i in range(12)]
        rates = [None, *(90.0 + i * 0.5 for i in range(11))]
        trend = [
            {"month": m, "customers": 0 if r is None else 3, "orders": 0 if r is None else 40, "on_time_delivery_pct": r}
            for m, r in zip(months, rates)
        ]
        rows = [
            {"customer_id": c, "tier": score(c)["tier"], "month": month, "orders": 10 + n, "on_time_delivery_pct": 80.0 + n * 5}
            for n, c in enumerate(CUSTOMERS)
        ]
        return {
            "month": month,
            "measure": measure,
            "tier": None,
            "filters": {},
            "customers": len(rows),
            "worst": rows[:worst],
            "trend": trend,
        }

    @app.get("/reports/service-levels.csv")
    async def service_levels_csv(month: str):
        from fastapi.responses import Response

        lines = ["customer_id,tier,month,on_time_delivery_pct", *(f"{c},{score(c)['tier']},{month},80.0" for c in CUSTOMERS)]
        return Response("\n".join(lines) + "\n", media_type="text/csv; charset=utf-8")

    @app.get("/reports/model.svg")
    async def model_chart(calibration_end: str):
        from fastapi.responses import Response

        return Response(
            '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>BG/NBD</title></svg>', media_type="image/svg+xml"
        )

    @app.get("/reports/pareto")
    async def pareto(rows: list[dict] = Depends(filtered)):
        # C1 (class A) brings 800, C2 (B) 150, C3 (C) 50; the report's shape over the customers the filters keep
        brings = {"A": 800.0, "B": 150.0, "C": 50.0}
        kept = sorted(r["abc_class"] for r in rows)
        total, n = sum(brings[k] for k in kept), len(kept)
        classes = [
            {
                "class": k,
                "customers": int(k in kept),
                "customer_share": round(int(k in kept) / n, 6) if n else 0.0,
                "contribution": brings.get(k, 0.0) if k in kept else 0.0,
                "contribution_share": round(brings[k] / total, 6) if k in kept and total else 0.0,
            }
            for k in "ABCD"
        ]
        curve, cumulative = [{"customer_share": 0.0, "contribution_share": 0.0}], 0.0
        for i, k in enumerate(kept, 1):
            cumulative += brings[k]
            curve.append({"customer_share": round(i / n, 6), "contribution_share": round(cumulative / total, 6)})
        top = round(brings[kept[0]] / total, 6) if kept and total else 0.0
        return {
            "customers": n,
            "total_contribution": total,
            "top_1pct_share": top,
            "top_20pct_share": top,
            "classes": classes,
            "curve": curve,
        }

    return app


def fake_complaints(recorder: Recorder) -> FastAPI:
    app = _app("complaints", recorder)
    complaints = {k: dict(v) for k, v in COMPLAINTS.items()}

    def view(request: Request, c: dict) -> dict:
        return customer_view(c) if request.headers.get("x-actor-role") == "customer" else c

    @app.get("/complaints")
    async def list_complaints(request: Request, customer_id: str | None = None):
        # staff list; deliberately ignores customer_id: the gateway must filter by itself
        return {"items": [view(request, c) for c in complaints.values()], "total": len(complaints)}

    @app.post("/complaints", status_code=201)
    async def file(request: Request):
        body = await request.json()
        cid = f"K{len(complaints) + 1}"
        complaints[cid] = {
            "id": cid,
            "number": f"CMP-2026-{len(complaints) + 1:04d}",
            "status": "new",
            "priority": "normal",
            "tracking_numbers": body.get("tracking_numbers", []),
            **body,
        }
        from fastapi.responses import JSONResponse

        return JSONResponse(view(request, complaints[cid]), status_code=201, headers={"Location": f"/complaints/{cid}"})

    @app.get("/complaints/lookup")
    async def lookup(
        request: Request,
        phone: str | None = None,
        tracking_number: str | None = None,
        number: str | None = None,
        customer_id: str | None = None,
    ):
        # like the real service: [{complaint, timeline}], a customer view for customers; but with NO owner check
        found = [
            c
            for c in complaints.values()
            if (tracking_number and tracking_number in c.get("tracking_numbers", []))
            or (number and c["number"] == number)
            or (phone and CUSTOMERS[c["customer_id"]]["phone"] == phone)
            or (customer_id and c["customer_id"] == customer_id)
        ]
        return [
            {"complaint": view(request, c), "timeline": [{"at": NOW.isoformat(), "kind": "filed", "body": "Complaint filed"}]}
            for c in found
        ]

    @app.get("/complaints/{complaint_id}")
    async def get_complaint(complaint_id: str, request: Request):
        if complaint_id not in complaints:
            raise HTTPException(404, "Complaint not found")
        now = dt.datetime.now(dt.UTC)
        full = {
            "channel": "call_center",
            "filed_at": (now - dt.timedelta(hours=2)).isoformat(),
            "status_text": {"en": complaints[complaint_id]["status"].replace("_", " "), "zh-CN": "处理中"},
            "clocks": [
                {
                    "kind": "first_response",
                    "target_minutes": 120,
                    "deadline_at": now.isoformat(),
                    "stopped_at": now.isoformat(),
                    "paused": False,
                    "escalation_level": 0,
                    "breached_at": None,
                },
                {
                    "kind": "resolution",
                    "target_minutes": 1440,
                    "deadline_at": (now + dt.timedelta(hours=5)).isoformat(),
                    "stopped_at": None,
                    "paused": False,
                    "escalation_level": 0,
                    "breached_at": None,
                },
            ],
            **complaints[complaint_id],
        }
        return view(request, full)

    @app.get("/complaints/{complaint_id}/timeline")
    async def timeline(complaint_id: str):
        if complaint_id not in complaints:
            raise HTTPException(404, "Complaint not found")
        return [
            {"at": NOW.isoformat(), "kind": "filed", "body": "Complaint filed"},
            {"at": (NOW + dt.timedelta(hours=1)).isoformat(), "kind": "assigned", "body": "Assigned to the delay team"},
        ]

    @app.post("/complaints/{complaint_id}/resolve")
    async def resolve(complaint_id: str):
        complaints[complaint_id]["status"] = "resolved"
        return complaints[complaint_id]

    @app.get("/reports/complaints")
    async def report():  # the complaints service's report shape
        return {
            "total": 17,
            "by_category": {"damage": 5, "delay": 12},
            "by_channel": {"call_center": 17},
            "by_period": {"2026-10": 7, "2026-11": 10},
            "sla": {"first_response": {"met": 15, "missed": 2, "rate": 0.8824}, "resolution": {"met": 13, "missed": 4, "rate": 0.7647}},
        }

    return app


def fake_notifications(recorder: Recorder) -> FastAPI:
    app = _app("notifications", recorder)

    @app.get("/preferences/contacts/{contact_id}")
    async def preferences(contact_id: str):
        return {"contact_id": contact_id, "channels": {"email": True, "sms": False}}

    @app.put("/preferences/contacts/{contact_id}")
    async def put_preferences(contact_id: str, request: Request):
        return {"contact_id": contact_id, **(await request.json())}

    @app.get("/reports/notifications")
    async def report(days: int = 30):  # the notifications service's report shape
        return {
            "days": days,
            "total": 75,
            "by_status": {"sent": 40, "delivered": 25, "failed": 7, "suppressed": 3},
            "by_channel": {"email": {"sent": 40, "failed": 2, "suppressed": 3}, "sms": {"delivered": 25, "failed": 5}},
            "by_rule": {},
            "suppressed_by_reason": {"frequency cap: 3 of 3 per day already sent": 2, "no address for channel email": 1},
            "suppressed_by_reason_key": [  # a row stored before reason keys has none
                {"key": "delivery.cap_per_day", "text": "frequency cap: 3 of 3 per day already sent", "count": 2},
                {"key": None, "text": "no address for channel email", "count": 1},
            ],
            "backlog": 0,
        }

    @app.get("/deliveries")
    async def deliveries(customer_id: str):
        # ignores customer_id on purpose: the gateway must filter by itself
        return [
            {"id": f"D{c}", "customer_id": c, "channel": "email", "status": "sent", "template_key": "shipment_delayed"} for c in CUSTOMERS
        ]

    return app


FAKES = {"profile": fake_profile, "scoring": fake_scoring, "complaints": fake_complaints, "notifications": fake_notifications}


class FakeUpstreams:
    def __init__(self, extra_customers: dict | None = None):
        self.recorders = {name: Recorder() for name in FAKES}
        self.apps = {name: factory(self.recorders[name]) for name, factory in FAKES.items()}
        if extra_customers:
            self.apps["profile"] = fake_profile(self.recorders["profile"], extra_customers)

    def transports(self, **overrides: httpx.AsyncBaseTransport) -> dict[str, httpx.AsyncBaseTransport]:
        out: dict[str, httpx.AsyncBaseTransport] = {
            name: httpx.ASGITransport(app=app, raise_app_exceptions=False) for name, app in self.apps.items()
        }
        out.update(overrides)
        return out


def down_transport(calls: list | None = None) -> httpx.MockTransport:
    """A service that refuses connections."""

    def handler(request: httpx.Request):
        if calls is not None:
            calls.append(request.method)
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.MockTransport(handler)


def slow_transport() -> httpx.MockTransport:
    def handler(request: httpx.Request):
        raise httpx.ReadTimeout("timed out", request=request)

    return httpx.MockTransport(handler)


def sleepy_transport(app: FastAPI, seconds: float) -> httpx.AsyncBaseTransport:
    """An upstream that answers, but only after `seconds` (for the aggregate time budget)."""
    inner = httpx.ASGITransport(app=app)

    class Sleepy(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            await asyncio.sleep(seconds)
            return await inner.handle_async_request(request)

    return Sleepy()


@asynccontextmanager
async def gateway_before_real_profile(database_factory, gateway_db: str, db_kind: str):
    """A client of the gateway whose profile upstream is the real service (in-process, on a fresh migrated database)."""
    import crm_profile
    from crm_gateway.main import create_app
    from crm_gateway.settings import GatewaySettings
    from crm_profile.main import create_app as create_profile_app
    from crm_profile.settings import ProfileSettings

    profile_url = await database_factory.create(db_kind, "gwprofile")
    await asyncio.to_thread(upgrade, crm_profile.ALEMBIC_INI, profile_url)
    profile_app = create_profile_app(ProfileSettings(database_url=profile_url, run_consumers=False), start_background=False)
    transports = FakeUpstreams().transports(profile=httpx.ASGITransport(app=profile_app))
    settings = GatewaySettings(database_url=gateway_db)
    app = create_app(settings, start_background=False, transports=transports)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    try:
        yield client, settings
    finally:
        await client.aclose()
        await app.state.gateway.aclose()
        await app.state.runtime.db.dispose()
        await profile_app.state.runtime.db.dispose()


def token(settings, role: str, subject: str | None = None, **claims: Any) -> str:
    return mint_token(
        settings.signing_key(),
        subject=subject or f"{role}-1",
        role=role,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        **claims,
    )


def auth(settings, role: str, subject: str | None = None, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, role, subject, **claims)}"}


ROLE_CLAIMS: dict[str, dict[str, Any]] = {
    "tms": {"subject": "tms-1"},
    "agent": {"subject": "agent-1", "team": "hotline"},
    "account_manager": {"subject": "am-1", "customers": ["C1", "C3"]},
    "customer": {"subject": "portal-c1", "customer_id": "C1"},
    "admin": {"subject": "admin-1"},
}


def role_headers(settings, role: str) -> dict[str, str]:
    claims = dict(ROLE_CLAIMS[role])
    subject = claims.pop("subject")
    return auth(settings, role, subject, **claims)


async def migrate(url: str) -> None:
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)


def new_event(event_type: str = "OrderCreated", customer_id: str = "C1", *, version: int | None = None, **payload: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"order_id": f"O-{uuid.uuid4().hex[:8]}", "customer_id": customer_id}
    if event_type == "OrderCreated":
        base.update(order_date=NOW.isoformat(), amount="1250.50", service_type="cold_chain")
    elif event_type == "OrderShipped":
        base.update(shipped_at=NOW.isoformat(), tracking_number="SF1")
    elif event_type == "OrderDelivered":
        base.update(delivered_at=NOW.isoformat())
    elif event_type == "ShipmentDelayed":
        base.update(delay_minutes=90, reported_at=NOW.isoformat())
    elif event_type in ("PaymentReceived", "PaymentOverdue"):
        base = {"invoice_id": f"INV-{uuid.uuid4().hex[:6]}", "customer_id": customer_id, "amount": "300.00", "due_date": "2026-11-01"}
        base.update(
            {"paid_at": NOW.isoformat()} if event_type == "PaymentReceived" else {"days_overdue": 19, "reported_at": NOW.isoformat()}
        )
    elif event_type == "ProofOfDeliveryReturned":
        base.update(returned_at=NOW.isoformat())
    elif event_type == "InvoiceCorrected":
        base = {
            "correction_id": f"CN-{uuid.uuid4().hex[:6]}",
            "invoice_id": f"INV-{uuid.uuid4().hex[:6]}",
            "customer_id": customer_id,
            "previous_amount": "300.00",
            "amount": "280.00",
            "corrected_at": NOW.isoformat(),
        }
    base.update(payload)
    event = {"event_id": str(uuid.uuid4()), "type": event_type, "payload": base}
    if version is not None:
        event["version"] = version
    return event


async def feed_read_models(runtime, payloads) -> None:
    """Apply scoring/notification events to the gateway's dashboard read models, as its consumer does."""
    from crm_common.consumer import Delivery, InboxProcessor
    from crm_common.events import encode_envelope, make_event, topic_for
    from crm_gateway.dashboard.handlers import DashboardReadModel

    processor = InboxProcessor(runtime.db, DashboardReadModel(), RefusingDeadLetters())
    deliveries = []
    for offset, payload in enumerate(payloads):
        envelope = make_event(payload, key=payload.customer_id, producer="test")
        deliveries.append(Delivery(topic_for(envelope.type), 0, offset, envelope.key.encode(), encode_envelope(envelope)))
    await processor.process(deliveries)


def dashboard_events(now: dt.datetime | None = None) -> list:
    from crm_common.events.notifications import NotificationFailed, NotificationSent
    from crm_common.events.scoring import CustomerTierChanged

    now = now or dt.datetime.now(dt.UTC)
    events = [
        CustomerTierChanged(customer_id="C1", old_tier="ordinary", new_tier="key_account", reason="A class", changed_at=now),
        CustomerTierChanged(customer_id="C2", old_tier="ordinary", new_tier="key_account", reason="A class", changed_at=now),
        CustomerTierChanged(customer_id="C3", old_tier="key_account", new_tier="at_risk", reason="churn", changed_at=now),
        CustomerTierChanged(customer_id="C3", old_tier="small", new_tier="ordinary", reason="old", changed_at=now - dt.timedelta(days=200)),
    ]
    for i in range(5):
        events.append(NotificationSent(notification_id=f"N{i}", customer_id="C1", channel="email", sent_at=now))
    for i in range(3):
        events.append(NotificationSent(notification_id=f"S{i}", customer_id="C2", channel="sms", sent_at=now))
    events.append(NotificationFailed(notification_id="F1", customer_id="C2", channel="sms", error="no route", attempts=3, failed_at=now))
    return events


def shipment_events(customer_id: str = "C2", now: dt.datetime | None = None) -> list:
    """Three orders of one customer: delivered on time, delivered late, delayed in transit."""
    from decimal import Decimal

    from crm_common.events.logistics import OrderCreated, OrderDelivered, OrderShipped, ShipmentDelayed

    now = now or dt.datetime.now(dt.UTC)
    events = []
    for i, (late, delivered) in enumerate(((False, True), (True, True), (False, False))):
        order_id, tracking = f"O-{customer_id}-{i}", f"SF{customer_id}{i}"
        ordered = now - dt.timedelta(days=10 - i)
        events.append(
            OrderCreated(
                order_id=order_id,
                customer_id=customer_id,
                tracking_number=tracking,
                order_date=ordered,
                amount=Decimal("1000.00") + i,
                service_type="cold_chain",
                promised_delivery_at=ordered + dt.timedelta(days=2),
            )
        )
        events.append(OrderShipped(order_id=order_id, customer_id=customer_id, shipped_at=ordered + dt.timedelta(hours=6)))
        if delivered:
            events.append(
                OrderDelivered(order_id=order_id, customer_id=customer_id, delivered_at=ordered + dt.timedelta(days=3 if late else 1))
            )
        else:
            events.append(
                ShipmentDelayed(order_id=order_id, customer_id=customer_id, delay_minutes=240, reported_at=ordered + dt.timedelta(days=1))
            )
    return events


@asynccontextmanager
async def console_with_profile(database_factory, gateway_db: str, name: str):
    """The gateway served on loopback with the real customer-profile service behind it (SQLite, migrated; the other
    upstreams fake): what the console's account-manager pages need in a real browser. Yields (url, client, settings, the profile app)."""
    import crm_profile
    from crm_devbroker.testing import served_on_loopback
    from crm_gateway.main import create_app
    from crm_gateway.settings import GatewaySettings
    from crm_profile.main import create_app as profile_app
    from crm_profile.settings import ProfileSettings

    profile_url = await database_factory.create("sqlite", name)
    await asyncio.to_thread(upgrade, crm_profile.ALEMBIC_INI, profile_url)
    profile = profile_app(ProfileSettings(database_url=profile_url, run_consumers=False, run_outbox_relay=False), start_background=False)
    settings = GatewaySettings(database_url=gateway_db)
    app = create_app(settings, start_background=False, transports=FakeUpstreams().transports(profile=httpx.ASGITransport(app=profile)))
    try:
        async with served_on_loopback(app) as url, httpx.AsyncClient(base_url=url) as client:
            yield url, client, settings, profile
    finally:
        await app.state.gateway.aclose()
        await app.state.runtime.db.dispose()
        await profile.state.runtime.db.dispose()
