"""One OpenAPI document for everything behind the gateway.

Each upstream's /openapi.json is fetched, its paths kept only where the gateway routes them to that
upstream (so /healthz and friends stay internal), prefixed with /api/v1; its schemas are renamed
`<upstream>_<Name>` when another upstream has a different schema of the same name, its operationIds kept
(`customers.create`) unless another upstream has the same one (then `<upstream>.<id>`). A missing
upstream is listed under `x-unavailable` instead of failing the document.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from fastapi import APIRouter, Request

from crm_common.openapi import add_problem_responses
from crm_gateway.authz import PUBLIC, RULES
from crm_gateway.middleware import API_PREFIX
from crm_gateway.state import GatewayDep, GatewayState

router = APIRouter()

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _routed(upstream: str, path: str, method: str) -> tuple[bool, Any]:
    for rule in RULES:
        if rule.regex.match(path) and method.upper() in rule.methods:
            return rule.upstream == upstream, rule
    return False, None


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[1]
                out[key] = "#/components/schemas/" + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def merge_specs(own: dict[str, Any], upstream_specs: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    merged = copy.deepcopy(own)
    merged.setdefault("paths", {})
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    merged["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    merged["security"] = [{"bearer": []}, {"apiKey": []}]
    taken = {op.get("operationId") for item in merged["paths"].values() for m, op in item.items() if m in METHODS}
    unavailable = []
    for name, spec in upstream_specs.items():
        if spec is None:
            unavailable.append(name)
            continue
        their = spec.get("components", {}).get("schemas", {})
        renames = {s: f"{name}_{s}" for s, body in their.items() if s in schemas and schemas[s] != body}
        spec = _rewrite_refs(spec, renames)
        for schema_name, body in spec.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(schema_name, schema_name)] = body
        for path, item in spec.get("paths", {}).items():
            kept = {}
            for method, operation in item.items():
                if method not in METHODS:
                    kept[method] = operation
                    continue
                routed, rule = _routed(name, path, method)
                if not routed:
                    continue
                operation = dict(operation)
                if operation.get("operationId") in taken:  # resources are unique per service: only a clash is prefixed
                    operation["operationId"] = f"{name}.{operation['operationId']}"
                taken.add(operation.get("operationId"))
                operation["x-upstream"] = name
                operation["x-roles"] = sorted(rule.roles) if rule.roles != PUBLIC else ["public"]
                kept[method] = operation
            if any(m in kept for m in METHODS):
                merged["paths"][API_PREFIX + path] = kept
    if unavailable:
        merged["x-unavailable"] = sorted(unavailable)
    # behind the gateway every operation may also meet its authentication (401/403) and rate limits (429)
    return add_problem_responses(merged, rate_limited=True)


async def _fetch_spec(gateway: GatewayState, name: str) -> dict[str, Any] | None:
    try:
        spec = await asyncio.wait_for(gateway.upstreams[name].get_json("/openapi.json"), gateway.settings.aggregate_timeout_s)
        return spec if isinstance(spec, dict) else None
    except Exception:
        return None


@router.get(API_PREFIX + "/openapi.json", include_in_schema=False)
async def aggregated_openapi(request: Request, gateway: GatewayDep) -> dict[str, Any]:
    names = [u.name for u in gateway.upstreams]
    specs = await asyncio.gather(*(_fetch_spec(gateway, n) for n in names))
    own = request.app.openapi()
    return merge_specs(own, dict(zip(names, specs)))
