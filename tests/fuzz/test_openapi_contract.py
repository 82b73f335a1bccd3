"""The OpenAPI documents say what the services answer: each validates (openapi-spec-validator), operationIds are
`<resource>.<action>` and unique, every operation declares the problem+json answers that apply to it, and 422 is
the problem+json validation body (FastAPI's HTTPValidationError appears nowhere). Schemathesis then holds the
services to these documents (test_fuzz_services.py: response_schema_conformance)."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate

from fuzz_support import BUILDERS, gateway_spec, service_specs

SPECS = service_specs()
SPECS["gateway"] = gateway_spec({name: SPECS[name] for name in BUILDERS})
METHODS = ("get", "put", "post", "delete", "patch")
OPS = {"/healthz", "/readyz", "/metrics"}
READABLE_ID = re.compile(r"^[a-z0-9-]+(\.[a-z0-9_-]+)+$")


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def problem_schema(response) -> str | None:
    content = response.get("content", {})
    if list(content) != ["application/problem+json"]:
        return None
    return content["application/problem+json"]["schema"].get("$ref", "").rsplit("/", 1)[-1]


@pytest.mark.parametrize("target", sorted(SPECS))
def test_the_document_validates(target):
    validate(SPECS[target])


@pytest.mark.parametrize("target", sorted(SPECS))
def test_operation_ids_are_readable_and_unique(target):
    ids = [operation["operationId"] for _, _, operation in operations(SPECS[target])]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert [i for i in ids if not READABLE_ID.match(i)] == []


def test_operation_ids_read_as_resource_and_action():
    assert SPECS["profile"]["paths"]["/customers"]["post"]["operationId"] == "customers.create"
    assert SPECS["profile"]["paths"]["/customers/{customer_id}"]["get"]["operationId"] == "customers.get"
    assert SPECS["gateway"]["paths"]["/api/v1/customers"]["post"]["operationId"] == "customers.create"


@pytest.mark.parametrize("target", sorted(SPECS))
def test_every_operation_declares_its_problem_answers(target):
    missing = []
    for path, method, operation in operations(SPECS[target]):
        if path in OPS:
            continue
        responses = operation["responses"]
        expected = {"503": "Problem", "401": "Problem", "403": "Problem"}
        if "{" in path:
            expected["404"] = "Problem"
        if method != "get":
            expected["409"] = "Problem"
        if "requestBody" in operation:
            expected["413"] = "Problem"
        if operation.get("parameters") or "requestBody" in operation:
            expected["422"] = "ValidationProblem"
        if target == "gateway":
            expected["429"] = "Problem"
        for code, schema in expected.items():
            if code not in responses or problem_schema(responses[code]) not in (schema, "Problem" if code != "422" else schema):
                missing.append(f"{method.upper()} {path}: {code}")
    assert missing == []


@pytest.mark.parametrize("target", sorted(SPECS))
def test_no_http_validation_error_is_documented(target):
    text = json.dumps(SPECS[target])
    assert "HTTPValidationError" not in text
    assert '"application/json": {"schema": {"$ref": "#/components/schemas/ValidationError"' not in text


def test_the_ingestion_endpoint_documents_its_request_body():
    body = SPECS["gateway"]["paths"]["/api/v1/events"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]
