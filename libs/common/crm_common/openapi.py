"""The OpenAPI document says what a service answers: readable operationIds and the problem+json responses.

`create_service_app` applies both to every service (and the gateway), so a route added later follows without
declaring anything: `operation_id` names it `<resource>.<action>` from its path and function
(`POST /customers` handled by `create_customer` -> `customers.create`), and `add_problem_responses` declares the
RFC 9457 answers the shared mechanisms can give on it (crm_common.problems, .edge, .limits, .idempotency).
A route's own `responses={...}` declaration wins over these defaults, except that a 422 is always the
problem+json validation body the services send (never FastAPI's HTTPValidationError).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from crm_common.problems import PROBLEM_JSON

OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_VERSION_SEGMENT = re.compile(r"^v\d+$")

PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "description": "RFC 9457 problem details; a problem may carry more members (e.g. `errors`, `max_batch`).",
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "description": "URI naming the problem, e.g. urn:crm:problem:validation"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
        "additionalProperties": True,
    },
    "ValidationProblem": {
        "title": "ValidationProblem",
        "description": "422: the request has invalid fields, each named in `errors` (urn:crm:problem:validation), or "
        "breaks a rule of its own (e.g. urn:crm:problem:idempotency-key-reused, without `errors`).",
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {
                "type": "object",
                "properties": {
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["loc", "msg", "type"],
                            "properties": {
                                "loc": {"type": "array", "items": {"type": "string"}},
                                "msg": {"type": "string"},
                                "type": {"type": "string"},
                            },
                        },
                    }
                },
            },
        ],
    },
}

DESCRIPTIONS = {
    "400": "Bad request",
    "401": "Not authenticated",
    "403": "Not allowed for this caller",
    "404": "Not found",
    "409": "Conflict with the current state (or an Idempotency-Key still in progress)",
    "412": "If-Match does not name the current version",
    "413": "Request body too large",
    "422": "Validation failed",
    "428": "If-Match required",
    "429": "Too many requests",
    "503": "A dependency (the database) is unavailable; retry after Retry-After",
}


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s and s != "api" and not _VERSION_SEGMENT.match(s)]


def operation_id(route: APIRoute) -> str:
    """`<resource>.<action>`: the path's first segment, and the handler's name without the resource's words
    (`GET /customers/{id}` by `get_customer` -> `customers.get`; `POST /customers/{id}/contacts` by
    `add_contact` -> `customers.add_contact`). Stable while the path and function keep their names."""
    if route.path_format in OPS_PATHS:
        return f"ops.{route.name}"
    segments = [s for s in _segments(route.path_format) if not s.startswith("{")]
    resource = segments[0] if segments else "root"
    noun = resource.replace("-", "_")
    resource_words = {noun, noun.rstrip("s"), noun.removesuffix("es")}
    words = [w for w in route.name.split("_") if w and w not in resource_words]
    return f"{resource}.{'_'.join(words) or route.name}"


def _problem(code: str, schema: str = "Problem") -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS.get(code, "Problem"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if code in ("429", "503"):
        response["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return response


def _applicable(path: str, method: str, operation: dict[str, Any], *, authenticated: bool, rate_limited: bool) -> list[str]:
    parameters = operation.get("parameters", [])
    headers = {p["name"].lower() for p in parameters if p.get("in") == "header"}
    codes = ["503"]
    if authenticated:
        codes += ["401", "403"]
    if rate_limited:
        codes.append("429")
    if "{" in path:
        codes.append("404")
    if method in WRITE_METHODS:
        codes.append("409")  # a unique constraint met (crm_common.problems) or an Idempotency-Key in progress
    if "requestBody" in operation:
        codes.append("413")
    if "if-match" in headers:
        codes += ["412", "428"]
    if parameters or "requestBody" in operation:
        codes.append("422")
    return codes


def add_problem_responses(openapi: dict[str, Any], *, authenticated: bool = True, rate_limited: bool = False) -> dict[str, Any]:
    """Declare, on every operation of the document, the problem+json responses that apply to it (in place)."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(PROBLEM_SCHEMAS)
    for path, item in openapi.get("paths", {}).items():
        if path in OPS_PATHS:
            continue
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code in _applicable(path, method, operation, authenticated=authenticated, rate_limited=rate_limited):
                if code == "422":
                    responses["422"] = _problem("422", "ValidationProblem")
                else:
                    responses.setdefault(code, _problem(code))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return openapi


def describe_problems(app: FastAPI, *, authenticated: bool = True, rate_limited: bool = False) -> None:
    """Make the app's generated document declare its problem responses (computed once, then cached)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_responses(generate(), authenticated=authenticated, rate_limited=rate_limited)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document
