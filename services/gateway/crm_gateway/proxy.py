"""The catch-all /api/v1 route: forwards to the upstream named by the matched rule, with the
caller's identity in X-Actor-* headers and the object-level checks of crm_gateway.objects."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from crm_common.problems import Problem
from crm_gateway.auth import Principal
from crm_gateway.authz import Match, Scope
from crm_gateway.middleware import API_PREFIX
from crm_gateway.objects import GATEWAY_IDENTITY, item_id, item_owner, items_of, not_found, restricted
from crm_gateway.state import GatewayState, gateway_of

router = APIRouter()

FORWARD_REQUEST_HEADERS = ("content-type", "accept", "accept-language", "if-match", "if-none-match", "idempotency-key", "user-agent")
RETURN_RESPONSE_HEADERS = (
    "content-type",
    "etag",
    "location",
    "retry-after",
    "cache-control",
    "content-disposition",
    "last-modified",
    "link",
    "idempotent-replayed",
)


def upstream_headers(request: Request, principal: Principal | None) -> dict[str, str]:
    headers = {name: request.headers[name] for name in FORWARD_REQUEST_HEADERS if name in request.headers}
    if principal is not None:
        headers.update(principal.identity_headers())
    if request.client:  # the address the gateway resolved (GATEWAY_TRUSTED_PROXIES), not what the client claims
        headers["X-Forwarded-For"] = request.client.host
    headers["X-Forwarded-Prefix"] = API_PREFIX
    return headers


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


async def _check_complaint(gateway: GatewayState, request: Request, principal: Principal, complaint_id: str) -> None:
    """Look at the complaint as staff (the customer view hides customer_id) and check its owner."""
    response = await gateway.upstreams["complaints"].request("GET", f"/complaints/{complaint_id}", headers=GATEWAY_IDENTITY)
    if response.status_code == 404:
        raise not_found("Complaint")
    if response.status_code >= 400:
        raise Problem(response.status_code, "Complaint check failed", upstream="complaints")
    body = _json_or_none(response.content)
    if not isinstance(body, dict) or not await gateway.ownership.owns(principal, body.get("customer_id")):
        raise not_found("Complaint")


@router.api_route(API_PREFIX + "/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def proxy(path: str, request: Request) -> Response:
    """What the app's router still reaches under /api/v1: a gateway-local rule whose handler is not mounted (forward()
    answers 404). Rules that name an upstream are sent to forward() by GatewayAuthMiddleware without the router."""
    return await forward(request)


async def forward(request: Request) -> Response:
    """Forward the request to the upstream of its matched rule (request.state.match), with the object-level checks."""
    gateway = gateway_of(request)
    found: Match = request.state.match
    principal: Principal | None = request.state.principal  # None only on PUBLIC rules
    rule = found.rule
    checked = principal is not None and restricted(principal) and rule.scope is not Scope.PUBLIC
    if rule.upstream is None:  # a gateway-local rule whose handler is not mounted
        raise Problem(404, "Not Found", "No such API route.")
    upstream = gateway.upstreams[rule.upstream]
    # re-encode the decoded path, so a "%3F" or "%23" in an id stays part of the path upstream
    upstream_path = quote(request.scope["path"][len(API_PREFIX) :], safe="/:@!$&'()*+,;=-._~")
    params = list(request.query_params.multi_items())
    content = await request.body()

    if checked:
        if rule.scope is Scope.PATH_CUSTOMER:
            await gateway.ownership.check_customer(principal, found.params["customer_id"])
        elif rule.scope is Scope.COMPLAINT:
            await _check_complaint(gateway, request, principal, found.params["complaint_id"])
        elif rule.scope is Scope.LIST:
            asked = [v for k, v in params if k == "customer_id"]
            if principal.role == "customer":
                params = [(k, v) for k, v in params if k != "customer_id"] + [("customer_id", principal.customer_id)]
            for customer_id in asked:
                await gateway.ownership.check_customer(principal, customer_id)
        elif rule.scope is Scope.BODY_CUSTOMER:
            body = _json_or_none(content)
            if not isinstance(body, dict):
                raise Problem(422, "Validation failed", "A JSON object body is required.", type_="urn:crm:problem:validation")
            if principal.role == "customer" and not body.get("customer_id"):
                body["customer_id"] = principal.customer_id
                content = json.dumps(body).encode()
            if not await gateway.ownership.owns(principal, body.get("customer_id")):
                raise Problem(403, "Forbidden", "You may act only for your own customers.")
        else:  # validate_table() makes this unreachable; refuse rather than leak
            raise Problem(403, "Forbidden")

    response = await upstream.request(
        request.method, upstream_path, params=params, headers=upstream_headers(request, principal), content=content or None
    )
    body_bytes = response.content
    if checked and response.status_code < 300 and rule.scope is Scope.LIST:
        data = _json_or_none(body_bytes)

        async def staff_view() -> dict[str, str]:
            """The same list as staff sees it, to learn each item's customer."""
            staff = await upstream.request("GET", upstream_path, params=params, headers=GATEWAY_IDENTITY)
            staff_items = items_of(_json_or_none(staff.content)) if staff.status_code < 300 else []
            return {item_id(i): item_owner(i, rule.item_id_field) for i in staff_items if isinstance(i, dict)}

        data = await gateway.ownership.filter_items(principal, data, rule.item_id_field, staff_view)
        body_bytes = json.dumps(data).encode()

    headers = {}
    for name in RETURN_RESPONSE_HEADERS:
        if name in response.headers:
            value = response.headers[name]
            if name == "location" and value.startswith("/") and not value.startswith(API_PREFIX):
                value = API_PREFIX + value
            headers[name] = value
    return Response(content=body_bytes if request.method != "HEAD" else b"", status_code=response.status_code, headers=headers)
