"""The admins' view of the audit trail: the trails of the services that hold personal data (crm_common.audit),
queried by customer, actor and period and merged in time order, as JSON or as a CSV export."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from crm_common.audit import CSV_COLUMNS, to_csv
from crm_common.events.bounds import FactDateTime
from crm_common.problems import Problem
from crm_gateway.auth import Principal
from crm_gateway.state import GatewayDep, GatewayState, PrincipalDep
from crm_gateway.views.api import _warning

router = APIRouter(prefix="/api/v1", tags=["audit"])

AUDITED_UPSTREAMS = ("profile", "complaints")
PAGE = 5000  # the services' largest page
MAX_ROWS = 100_000  # per service and request: narrow the period beyond that


async def audit_query(
    customer_id: str | None = Query(default=None, max_length=200),
    actor: str | None = Query(default=None, max_length=200, description="the user (token subject)"),
    since: FactDateTime | None = Query(default=None, description="from (inclusive), ISO 8601 with offset"),
    until: FactDateTime | None = Query(default=None, description="to (exclusive), ISO 8601 with offset"),
) -> dict[str, str]:
    """The trail's filters as the services' query parameters."""
    if since and until and since >= until:
        raise Problem(422, "Invalid period", "since must be before until.")
    return {
        k: v.isoformat() if isinstance(v, dt.datetime) else v
        for k, v in {"customer_id": customer_id, "actor": actor, "since": since, "until": until}.items()
        if v is not None
    }


AuditParams = Annotated[dict[str, str], Depends(audit_query)]


async def _rows_of(gateway: GatewayState, principal: Principal, upstream: str, params: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after_id = 0
    while len(rows) < MAX_ROWS:
        page = await gateway.upstreams[upstream].get_json(
            "/audit", params=params | {"after_id": after_id, "limit": PAGE}, headers=principal.identity_headers()
        )
        rows += [row | {"service": gateway.settings.upstream_audiences()[upstream]} for row in page["items"]]
        if page["next_after_id"] is None:
            return rows
        after_id = page["next_after_id"]
    raise Problem(413, "Too many audit rows", f"More than {MAX_ROWS} rows in {upstream}: narrow the period or the filters.")


async def merged_trail(
    gateway: GatewayState, principal: Principal, params: dict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    results = await asyncio.gather(*(_rows_of(gateway, principal, name, params) for name in AUDITED_UPSTREAMS), return_exceptions=True)
    rows, warnings = [], []
    for name, result in zip(AUDITED_UPSTREAMS, results):
        if isinstance(result, BaseException):
            if isinstance(result, Problem) and result.status == 413:
                raise result
            warnings.append(_warning(name, result))
        else:
            rows += result
    return sorted(rows, key=lambda row: (row["at"], row["service"], row["id"])), warnings


@router.get("/audit", summary="Audit trail of personal data (admins): who read or changed which customer's data, when")
async def audit_trail(gateway: GatewayDep, principal: PrincipalDep, params: AuditParams) -> dict[str, Any]:
    rows, warnings = await merged_trail(gateway, principal, params)
    return {"items": rows, "warnings": warnings, "partial": bool(warnings)}


@router.get("/audit.csv", summary="The audit trail as CSV (admins); refused rather than incomplete when a service is down")
async def audit_csv(gateway: GatewayDep, principal: PrincipalDep, params: AuditParams) -> Response:
    rows, warnings = await merged_trail(gateway, principal, params)
    if warnings:
        raise Problem(
            503,
            "Audit trail incomplete",
            "Not every service answered; an export must be complete.",
            sources=[w["source"] for w in warnings],
            headers={"Retry-After": "10"},
        )
    return Response(
        to_csv(rows, ("service", *CSV_COLUMNS)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="crm-audit.csv"'},
    )
