"""Views built from several services in parallel: customer 360, unified search, management dashboard.

Each source has its own time budget; a failed source leaves its section null and adds a warning,
so one service being down never takes the page down.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Query, Request

from crm_common.deps import RuntimeDep
from crm_common.problems import Problem
from crm_gateway.auth import Principal
from crm_gateway.dashboard import service as readmodels
from crm_gateway.objects import GATEWAY_IDENTITY, item_id, item_owner, items_of, restricted
from crm_gateway.state import GatewayDep, GatewayState, PrincipalDep

router = APIRouter(prefix="/api/v1", tags=["aggregates"])

CLOSED_COMPLAINT_STATES = frozenset({"resolved", "closed", "merged", "rejected", "cancelled", "withdrawn"})


def _source(spec: str, **values: str) -> tuple[str, str, list[tuple[str, str]]]:
    upstream, _, target = spec.partition(":")
    parts = urlsplit(target.format(**values))
    return upstream, parts.path, parse_qsl(parts.query)


async def _fetch(
    gateway: GatewayState, name: str, spec: str, headers: dict[str, str], extra: list[tuple[str, str]] | None = None, **values: str
) -> Any:
    upstream_name, path, params = _source(spec, **values)
    params += extra or []
    upstream = gateway.upstreams[upstream_name]
    return await asyncio.wait_for(upstream.get_json(path, params=params, headers=headers), gateway.settings.aggregate_timeout_s)


def _warning(name: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, Problem):
        return {"source": name, "status": exc.status, "detail": exc.detail or exc.title}
    if isinstance(exc, asyncio.TimeoutError):
        return {"source": name, "status": 504, "detail": f"{name} did not answer in time"}
    return {"source": name, "status": 502, "detail": f"{name} failed: {type(exc).__name__}"}


async def gather_sources(
    gateway: GatewayState,
    sources: dict[str, str],
    headers: dict[str, str],
    extra: dict[str, list[tuple[str, str]]] | None = None,
    **values: str,
):
    """Every source at once; `extra`: query parameters added to the named sources' own."""
    names = list(sources)
    extra = extra or {}
    results = await asyncio.gather(
        *(_fetch(gateway, n, sources[n], headers, extra.get(n), **values) for n in names), return_exceptions=True
    )
    data: dict[str, Any] = {}
    failures: dict[str, BaseException] = {}
    for name, result in zip(names, results):
        if isinstance(result, BaseException):
            failures[name] = result
            data[name] = None
        else:
            data[name] = result
    return data, failures


def split_failures(failures: dict[str, BaseException]) -> tuple[list[dict[str, Any]], list[str]]:
    """Outages become warnings; a 404 means the service has nothing (yet) for this: `unavailable`."""
    warnings, unavailable = [], []
    for name, exc in failures.items():
        if isinstance(exc, Problem) and exc.status == 404:
            unavailable.append(name)
        else:
            warnings.append(_warning(name, exc))
    return warnings, sorted(unavailable)


def flatten_complaint(item: dict) -> dict:
    """A lookup result {"complaint": {...}, "timeline": [...]} as one complaint dict (timeline inside)."""
    if isinstance(item.get("complaint"), dict):
        return {**item["complaint"], "timeline": item.get("timeline") or []}
    return item


def _headers(principal: Principal) -> dict[str, str]:
    return principal.identity_headers()


@router.get("/customers/{customer_id}/360", summary="Customer 360: profile, scores and tier, open complaints, shipments, notifications")
async def customer_360(customer_id: str, gateway: GatewayDep, principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    await gateway.ownership.check_customer(principal, customer_id)
    data, failures = await gather_sources(gateway, gateway.settings.customer360_sources, _headers(principal), customer_id=customer_id)
    if "shipments" not in gateway.settings.customer360_sources:
        try:
            async with runtime.db.sessions() as session:  # a failure is a warning of the answer, as a source's
                data["shipments"] = await readmodels.recent_shipments(session, customer_id)
        except Exception as exc:
            failures["shipments"] = Problem(503, "Read model unavailable", f"shipments: {type(exc).__name__}")
            data["shipments"] = None
    profile_failure = failures.get("profile")
    if isinstance(profile_failure, Problem) and profile_failure.status == 404:
        raise Problem(404, "Not Found", "Customer not found.")
    warnings, unavailable = split_failures(failures)

    complaints = data.get("complaints")
    if complaints is not None:
        items = [flatten_complaint(c) for c in items_of(complaints) if isinstance(c, dict)]
        if any("customer_id" not in c for c in items):  # a customer view: learn the owners from the staff view
            owners = {
                item_id(c): item_owner(c)
                for c in items_of(
                    await _fetch(
                        gateway, "complaints", gateway.settings.customer360_sources["complaints"], GATEWAY_IDENTITY, customer_id=customer_id
                    )
                )
            }
            items = [dict(c, customer_id=owners.get(item_id(c))) if "customer_id" not in c else c for c in items]
        # never show another customer's complaint, whatever the upstream answered
        items = [c for c in items if c.get("customer_id") == customer_id]
        data["complaints"] = [c for c in items if str(c.get("status", "")).lower() not in CLOSED_COMPLAINT_STATES]
    for name in ("shipments", "notifications"):
        if data.get(name) is not None:
            data[name] = [i for i in items_of(data[name]) if isinstance(i, dict) and i.get("customer_id") in (None, customer_id)]
    scores = data.get("scores") if isinstance(data.get("scores"), dict) else None
    tier = scores.get("tier") if scores else None
    return {
        "customer_id": customer_id,
        "profile": data.get("profile"),
        "scores": scores,
        "tier": tier.get("value") if isinstance(tier, dict) else tier,
        "open_complaints": data.get("complaints"),
        "recent_shipments": data.get("shipments"),
        "last_notifications": data.get("notifications"),
        "warnings": warnings,
        "unavailable": unavailable,
        "partial": bool(warnings),
    }


PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()-]{5,30}$")
COMPLAINT_NUMBER_RE = re.compile(r"^(CP\d{6}[A-Z0-9]{4,}|CMP-[-A-Z0-9]{4,})$", re.IGNORECASE)  # CP261126X7K2QM (complaints service)


@router.get("/search", summary="Call-center search: phone, tracking number, complaint number or customer name")
async def search(gateway: GatewayDep, principal: PrincipalDep, q: str = Query(min_length=1, max_length=200)) -> dict[str, Any]:
    """Asks the profile service (name, phone) and the complaints service (tracking number, complaint
    number, phone) at once; each result list is filtered to what the caller may see."""
    q = q.strip()
    headers = _headers(principal)
    calls: dict[str, Any] = {}
    calls_params: dict[str, dict[str, str]] = {}

    def lookup(name: str, **params: str) -> None:
        calls_params[name] = params
        calls[name] = gateway.upstreams["complaints"].get_json("/complaints/lookup", params=params, headers=headers)

    if PHONE_RE.match(q):
        calls["customers"] = gateway.upstreams["profile"].get_json("/customers/search", params={"phone": q}, headers=headers)
        lookup("complaints", phone=q)
        lookup("complaints_by_tracking", tracking_number=q)  # many carriers' tracking numbers are all digits
    else:
        calls["customers"] = gateway.upstreams["profile"].get_json("/customers/search", params={"q": q}, headers=headers)
        if COMPLAINT_NUMBER_RE.match(q):  # complaint numbers can look like tracking numbers: ask both
            lookup("complaints", number=q)
            lookup("complaints_by_tracking", tracking_number=q)
        else:
            lookup("complaints", tracking_number=q)
    names = list(calls)
    timeout = gateway.settings.aggregate_timeout_s
    results = await asyncio.gather(*(asyncio.wait_for(c, timeout) for c in calls.values()), return_exceptions=True)
    out: dict[str, Any] = {"query": q, "customers": [], "complaints": [], "warnings": []}
    seen: set[str] = set()
    for name, result in zip(names, results):
        if isinstance(result, BaseException):
            if isinstance(result, Problem) and result.status == 404:
                continue
            out["warnings"].append(_warning(name, result))
            continue
        if name == "customers":
            out["customers"] = await gateway.ownership.filter_items(principal, items_of(result), "id")
        else:

            async def staff_view(query=calls_params[name]) -> dict[str, str]:
                staff = await gateway.upstreams["complaints"].get_json("/complaints/lookup", params=query, headers=GATEWAY_IDENTITY)
                return {item_id(i): item_owner(i) for i in items_of(staff) if isinstance(i, dict)}

            for item in await gateway.ownership.filter_items(principal, items_of(result), "customer_id", staff_view):
                complaint = flatten_complaint(item)
                if complaint.get("id") not in seen:
                    seen.add(complaint.get("id"))
                    out["complaints"].append(complaint)
    out["partial"] = bool(out["warnings"])
    return out


# the management reports' filters (crm_scoring.reports.filters): passed on as given, the scoring service validates them
REPORT_FILTERS = ("region", "industry", "account_manager", "service_type", "tier", "period_start", "period_end")


def report_filter_params(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items() if k in REPORT_FILTERS]


def rejected_filters(failures: dict[str, BaseException], filtered: list[str]) -> Problem | None:
    """A filtered source that answered 422 rejected the filters: the whole filtered view is then wrong, not partial."""
    for name in filtered:
        failure = failures.get(name)
        if isinstance(failure, Problem) and failure.status == 422:
            return failure
    return None


@router.get("/dashboard", summary="Management dashboard data: Pareto, RFM grid, tier movements, complaint trends, notification stats")
async def dashboard(request: Request, gateway: GatewayDep, principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Query parameters named in REPORT_FILTERS go to the filterable report sources (settings.dashboard_filtered_sources);
    a value the service rejects answers its 422 here."""
    if restricted(principal):  # the table already says admin only; belt and braces
        raise Problem(403, "Forbidden")
    settings = gateway.settings
    filters = report_filter_params(request)
    filtered = [n for n in settings.dashboard_filtered_sources if n in settings.dashboard_sources] if filters else []
    data, failures = await gather_sources(gateway, settings.dashboard_sources, _headers(principal), {n: filters for n in filtered})
    rejected = rejected_filters(failures, filtered)
    if rejected is not None:
        raise rejected
    local = {"tier_movements": readmodels.tier_movement_report, "notifications": readmodels.notification_report}
    for name, report in local.items():
        failure = failures.get(name)
        if name not in settings.dashboard_sources or (isinstance(failure, Problem) and failure.status == 404):
            failures.pop(name, None)  # the service has no such report: the gateway's read model answers
            try:
                async with runtime.db.sessions() as session:
                    data[name] = await report(session, settings.dashboard_window_days)
            except Exception as exc:  # the gateway's own database is away: a warning like any source
                failures[name] = Problem(503, "Read model unavailable", f"{name}: {type(exc).__name__}")
                data[name] = None
    warnings, unavailable = split_failures(failures)
    return {
        "sections": data,
        "filters": dict(filters),
        "filtered_sections": filtered,
        "warnings": warnings,
        "unavailable": unavailable,
        "partial": bool(warnings),
    }


__all__ = ["router", "GATEWAY_IDENTITY"]
