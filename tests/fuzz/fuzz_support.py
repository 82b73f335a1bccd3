"""Helpers for the schemathesis fuzz tests: every app in-process on one long-lived event loop.

Schemathesis generates cases with hypothesis (synchronous); the apps are async (SQLAlchemy async
engines whose connections belong to one loop). So each app lives on a `LoopThread` (an event loop
in a background thread) and the synchronous hypothesis test sends each case through an
`httpx.AsyncClient` on `httpx.ASGITransport` on that loop, then lets schemathesis validate the
httpx response (`case.validate_response`) with the checks `not_a_server_error` and
`response_schema_conformance`.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from crm_common.migrations import upgrade
from crm_devbroker.testing import edge_auth

CHECKS = [not_a_server_error, response_schema_conformance]


class LoopThread:
    """An asyncio loop running in a daemon thread; `run(coro)` waits for the result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class AppUnderTest:
    name: str
    app: Any
    client: httpx.AsyncClient
    closers: list[Callable[[], Coroutine]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.client.aclose()
        for close in self.closers:
            try:
                await close()
            except Exception:  # closing is best effort; the test result is already known
                pass


def client_for(app: Any, base_url: str = "http://fuzz") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=base_url, auth=edge_auth(app), timeout=30
    )


async def migrated(database_factory, alembic_ini, kind: str, label: str) -> str:
    url = await database_factory.create(kind, label)
    await asyncio.to_thread(upgrade, alembic_ini, url)
    return url


# ------------------------------------------------------------------ the services, built in-process


async def build_profile(database_factory, kind: str = "sqlite") -> AppUnderTest:
    import crm_profile
    from crm_profile.main import create_app
    from crm_profile.settings import ProfileSettings

    url = await migrated(database_factory, crm_profile.ALEMBIC_INI, kind, "fzprofile")
    app = create_app(ProfileSettings(database_url=url, run_consumers=False, run_outbox_relay=False), start_background=False)
    return AppUnderTest("profile", app, client_for(app), [app.state.runtime.stop])


async def build_scoring(database_factory, kind: str = "sqlite") -> AppUnderTest:
    from crm_scoring.db import ALEMBIC_INI
    from crm_scoring.main import create_app
    from crm_scoring.settings import ScoringSettings

    url = await migrated(database_factory, ALEMBIC_INI, kind, "fzscoring")
    settings = ScoringSettings(database_url=url, run_consumers=False, run_outbox_relay=False, run_scheduler=False)
    app = create_app(settings, start_background=False)
    return AppUnderTest("scoring", app, client_for(app), [app.state.runtime.stop])


async def build_complaints(database_factory, kind: str = "sqlite") -> AppUnderTest:
    import crm_complaints
    from crm_complaints.main import create_app
    from crm_complaints.settings import ComplaintsSettings

    url = await migrated(database_factory, crm_complaints.ALEMBIC_INI, kind, "fzcomplaints")
    settings = ComplaintsSettings(database_url=url, run_consumers=False, run_outbox_relay=False, run_scheduler=False)
    app = create_app(settings, start_background=False)
    return AppUnderTest("complaints", app, client_for(app), [app.state.runtime.stop])


async def build_notifications(database_factory, kind: str = "sqlite") -> AppUnderTest:
    import crm_notifications
    from crm_notifications.main import create_app
    from crm_notifications.settings import NotificationsSettings

    url = await migrated(database_factory, crm_notifications.ALEMBIC_INI, kind, "fznotif")
    settings = NotificationsSettings(
        database_url=url,
        run_consumers=False,
        run_outbox_relay=False,
        run_dispatcher=False,
        run_scans=False,
    )
    app = create_app(settings, start_background=False)
    await app.state.runtime.seed_defaults()  # the default templates and rules, as a started service has them
    return AppUnderTest("notifications", app, client_for(app), [app.state.runtime.stop])


# ------------------------------------------------------------------ a few real objects to aim at

STAFF = {"X-Actor-Id": "fuzz-admin", "X-Actor-Role": "admin", "X-Actor-Subject": "fuzz-admin"}


async def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, f"seeding failed: {response.status_code} {response.text[:500]}"
    return response.json() if response.content else None


async def seed_profile(target: AppUnderTest) -> dict[str, str]:
    body = {
        "name": "Fuzz Seed Logistics Co., Ltd.",
        "customer_type": "enterprise",
        "industry": "retail",
        "region": "East China",
        "contacts": [{"name": "Zhao Min", "phone": "139 1234 5678", "email": "zhao.min@fuzz-seed.example"}],
        "addresses": [{"kind": "pickup", "line1": "1 Seed Road", "city": "Shanghai", "province": "Shanghai"}],
    }
    customer = await _ok(await target.client.post("/customers", json=body, headers=STAFF))
    cid = customer["id"]
    contacts = await _ok(await target.client.get(f"/customers/{cid}/contacts", headers=STAFF))
    addresses = await _ok(await target.client.get(f"/customers/{cid}/addresses", headers=STAFF))
    return {"customer_id": cid, "survivor_id": cid, "contact_id": contacts[0]["id"], "address_id": addresses[0]["id"]}


async def seed_scoring(target: AppUnderTest) -> dict[str, str]:
    import datetime as dt
    from decimal import Decimal

    from crm_common.consumer import Delivery, InboxProcessor
    from crm_common.events import encode_envelope, make_event, topic_for
    from crm_common.events.customers import CustomerRegistered
    from crm_common.events.logistics import OrderCreated
    from crm_scoring.scoring.handlers import ScoringHandler

    runtime = target.app.state.runtime

    class NoDeadLetters:
        async def send(self, *args, **kwargs):
            raise AssertionError(f"seeding produced a dead letter: {args[:2]}")

    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    envelopes = []
    for c in range(5):
        cid = f"fz-{c}"
        envelopes.append(make_event(CustomerRegistered(customer_id=cid, name=f"Fuzz {c}"), key=cid, producer="fuzz"))
        for n in range(3 + c):
            at = start + dt.timedelta(days=20 * n + c)
            envelopes.append(
                make_event(
                    OrderCreated(
                        order_id=f"{cid}-o{n}", customer_id=cid, order_date=at, amount=Decimal(100 * (c + 1) + n), service_type="express"
                    ),
                    key=cid,
                    producer="fuzz",
                )
            )
    processor = InboxProcessor(runtime.db, ScoringHandler(runtime.settings), NoDeadLetters(), max_attempts=1, retry_delay_s=0)
    await processor.process([Delivery(topic_for(e.type), 0, i, e.key.encode(), encode_envelope(e)) for i, e in enumerate(envelopes)])
    await _ok(await target.client.post("/admin/recompute", headers=STAFF))
    return {"customer_id": "fz-3"}


async def seed_complaints(target: AppUnderTest) -> dict[str, str]:
    from crm_common.events.customers import ContactSnapshot, CustomerRegistered
    from crm_complaints.complaints import directory

    async with target.app.state.runtime.db.transaction() as session:  # as the customer-directory consumer would
        await directory.apply_snapshot(
            session,
            CustomerRegistered(
                customer_id="fz-cust-1",
                name="Fuzz Seed Customer",
                status="active",
                contacts=[ContactSnapshot(contact_id="fz-c1", name="Li Lei", phone="+86 138 0013 8000", email="li@fuzz-seed.example")],
            ),
        )
    body = {
        "customer_id": "fz-cust-1",
        "order_ids": ["ORD-FZ-1"],
        "tracking_numbers": ["SF900100200"],
        "category": "delay",
        "description": "Parcel two days late",
        "channel": "web",
        "reporter": {"name": "Li Lei", "phone": "+86 138 0013 8000", "email": "li@fuzz-seed.example"},
    }
    complaint = await _ok(await target.client.post("/complaints", json=body, headers=STAFF))
    return {"complaint_id": complaint["id"], "customer_id": "fz-cust-1"}


async def seed_notifications(target: AppUnderTest) -> dict[str, str]:
    templates = await _ok(await target.client.get("/templates", headers=STAFF))
    rules = await _ok(await target.client.get("/rules", headers=STAFF))
    ids = {"contact_id": "fz-contact-1"}
    if templates:
        ids.update(key=templates[0]["key"], language=templates[0]["language"])
    if rules:
        ids["rule_id"] = str(rules[0]["id"])
    return ids


SEEDERS = {"profile": seed_profile, "scoring": seed_scoring, "complaints": seed_complaints, "notifications": seed_notifications}


BUILDERS = {
    "profile": build_profile,
    "scoring": build_scoring,
    "complaints": build_complaints,
    "notifications": build_notifications,
}


async def build_gateway(database_factory, upstreams: dict[str, AppUnderTest], kind: str = "sqlite") -> AppUnderTest:
    """The gateway with the real services behind it (ASGITransport to each app), admin token."""
    from crm_gateway.auth import mint_token
    from crm_gateway.main import create_app
    from crm_gateway.settings import GatewaySettings

    gateway_ini = __import__("pathlib").Path(__import__("crm_gateway").__file__).resolve().parents[1] / "alembic.ini"
    url = await migrated(database_factory, gateway_ini, kind, "fzgateway")
    settings = GatewaySettings(database_url=url, rate_limit_enabled=False, upstream_retries=0)
    transports = {name: httpx.ASGITransport(app=u.app, raise_app_exceptions=False) for name, u in upstreams.items()}
    app = create_app(settings, start_background=False, transports=transports)
    token = mint_token(
        settings.signing_key(), subject="fuzz-admin", role="admin", issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )

    async def close() -> None:
        await app.state.gateway.aclose()
        await app.state.runtime.stop()

    return AppUnderTest("gateway", app, client_for(app), [close], headers={"Authorization": f"Bearer {token}"})


# ------------------------------------------------------------------ the documents, known at collection time


def service_apps() -> dict[str, Any]:
    """Each service's app and the gateway's, built with a database that is never opened (nothing is started)."""
    from crm_complaints.main import create_app as complaints_app
    from crm_complaints.settings import ComplaintsSettings
    from crm_gateway.main import create_app as gateway_app
    from crm_gateway.settings import GatewaySettings
    from crm_notifications.main import create_app as notifications_app
    from crm_notifications.settings import NotificationsSettings
    from crm_profile.main import create_app as profile_app
    from crm_profile.settings import ProfileSettings
    from crm_scoring.main import create_app as scoring_app
    from crm_scoring.settings import ScoringSettings

    unused = "sqlite:///never-opened.db"
    return {
        "profile": profile_app(ProfileSettings(database_url=unused), start_background=False),
        "scoring": scoring_app(ScoringSettings(database_url=unused, run_scheduler=False), start_background=False),
        "complaints": complaints_app(ComplaintsSettings(database_url=unused), start_background=False),
        "notifications": notifications_app(NotificationsSettings(database_url=unused), start_background=False),
        "gateway": gateway_app(GatewaySettings(database_url=unused), start_background=False),
    }


def service_specs() -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, from an app that never touches its (unused) database."""
    return {name: app.openapi() for name, app in service_apps().items() if name != "gateway"}


def gateway_spec(specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The gateway's merged document, as /api/v1/openapi.json builds it from the upstreams' documents."""
    from crm_gateway.apidocs.api import merge_specs

    return merge_specs(service_apps()["gateway"].openapi(), specs)


def operations_of(spec: dict[str, Any]) -> list[tuple[str, str]]:
    methods = ("get", "put", "post", "delete", "patch")
    return [(m.upper(), path) for path, item in spec.get("paths", {}).items() for m in methods if m in item]


# ------------------------------------------------------------------ running schemathesis


def httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """requests-style keyword arguments (what schemathesis serialises) -> httpx.AsyncClient.request()."""
    out = {k: kwargs[k] for k in ("method", "url", "headers", "params", "json", "files") if kwargs.get(k) is not None}
    if kwargs.get("cookies"):  # per-request cookies are deprecated in httpx: send the header
        out["headers"] = {**(out.get("headers") or {}), "Cookie": "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())}
    data = kwargs.get("data")
    if isinstance(data, (bytes, str)):
        out["content"] = data
    elif data is not None:
        out["data"] = data
    if "json" in kwargs and kwargs["json"] is None and "content" not in out:
        out["content"] = b"null"
        out.setdefault("headers", {})["Content-Type"] = "application/json"
    return out


@dataclass
class FuzzReport:
    service: str
    operations: int = 0
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.service}: {self.operations} operations, {self.cases} cases, statuses {dict(sorted(self.statuses.items()))}"


def fuzz_schema(
    loop: LoopThread,
    target: AppUnderTest,
    spec: dict[str, Any],
    *,
    max_examples: int = 30,
    skip: Callable[[str, str], bool] | None = None,
    extra_headers: dict[str, str] | None = None,
    known_ids: dict[str, str] | None = None,
    only: tuple[str, str] | None = None,
    negative_examples: int = 0,
) -> FuzzReport:
    """Fuzz every operation of `spec` against `target`; collect (do not stop at) failing operations."""
    schema = schemathesis.openapi.from_dict(spec)
    report = FuzzReport(target.name)
    headers = {**target.headers, **(extra_headers or {})}
    for result in schema.get_all_operations():
        operation = result.ok()
        if skip is not None and skip(operation.method.upper(), operation.path):
            continue
        if only is not None and (operation.method.upper(), operation.path) != only:
            continue
        report.operations += 1
        strategies = [(operation.as_strategy(), max_examples)]
        names = [p.name for p in operation.path_parameters]
        if names and known_ids and all(n in known_ids for n in names):
            # a second pass aimed at real objects: random ids mostly reach the 404 path only
            strategies.append((operation.as_strategy(path_parameters={n: known_ids[n] for n in names}), max_examples))
        if negative_examples and getattr(operation.body, "items", None):
            # schema-violating bodies (wrong types, missing fields...): refused with a 4xx, never a 5xx
            strategies.append((operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), negative_examples))
        for strategy, examples in strategies:
            failure = _fuzz_operation(loop, target, operation, strategy, headers, examples, report)
            if failure:
                report.failures.append(failure)
                break
    return report


def _fuzz_operation(loop, target, operation, strategy, headers, max_examples, report) -> str | None:
    """Run one hypothesis test for one operation; the failure text, or None."""

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=strategy)
    def run(case) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://fuzz", headers=headers)
        response = loop.run(target.client.request(**httpx_kwargs(kwargs)))
        report.cases += 1
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Unsatisfiable:  # nothing of this operation can be made invalid
        return None
    except (Exception, BaseExceptionGroup) as exc:  # hypothesis re-raises the minimal example's error (a FailureGroup)
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return f"{operation.method.upper()} {operation.path}: {text[:1500]}"
    return None
