"""TMS/WMS event ingestion: validate each envelope, drop duplicates, stage the rest in the outbox.

Accepted events are committed to the gateway's own database (outbox rows + `ingested_events` ids)
before the answer is sent, so nothing accepted is lost while the broker is away; the outbox relay
publishes them to their topic (`logistics.orders`, `finance.payments`) keyed by customer id.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from crm_common.deps import RuntimeDep
from crm_common.events import EventEnvelope, registered_events
from crm_common.events.logistics import LOGISTICS_EVENT_TYPES
from crm_common.problems import Problem
from crm_gateway.ingestion.schemas import IngestResult
from crm_gateway.ingestion.service import ingest
from crm_gateway.state import GatewayDep, PrincipalDep

router = APIRouter(prefix="/api/v1", tags=["ingestion"])


def _items_of(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        return body["events"]
    if isinstance(body, dict):
        return [body]
    raise Problem(
        422, "Validation failed", 'Send one event object, a JSON array of events or {"events": [...]}.', type_="urn:crm:problem:validation"
    )


@router.post(
    "/events",
    response_model=IngestResult,
    responses={207: {"model": IngestResult, "description": "At least one event was rejected; see `results`."}},
    summary="Ingest logistics events from TMS/WMS/billing (one, a list, or {events: [...]})",
)
async def post_events(request: Request, runtime: RuntimeDep, gateway: GatewayDep, principal: PrincipalDep) -> Response:
    """200 when every event was accepted or was a duplicate; 207 when at least one was rejected.
    Each result says `accepted`, `duplicate` (event_id seen before) or `rejected` with the reason."""
    settings = gateway.settings
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.ingest_max_body_bytes:
        raise Problem(413, "Payload Too Large", f"At most {settings.ingest_max_body_bytes} bytes per request.")
    raw = await request.body()
    if len(raw) > settings.ingest_max_body_bytes:
        raise Problem(413, "Payload Too Large", f"At most {settings.ingest_max_body_bytes} bytes per request.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Problem(400, "Bad Request", "The body is not JSON.") from None
    items = _items_of(body)
    if not items:
        raise Problem(422, "Validation failed", "The batch is empty.", type_="urn:crm:problem:validation")
    if len(items) > settings.ingest_max_batch:
        raise Problem(
            413, "Payload Too Large", f"At most {settings.ingest_max_batch} events per request.", max_batch=settings.ingest_max_batch
        )
    result = await ingest(runtime, items, principal)
    return Response(orjson.dumps(result), status_code=207 if result["rejected"] else 200, media_type="application/json")


def _ingest_event_schemas() -> dict[str, dict]:
    """JSON Schemas of one ingested event per (type, version), built from the models the gateway validates with."""
    envelope = EventEnvelope.model_json_schema()
    common = {k: v for k, v in envelope["properties"].items() if k not in ("type", "version", "payload")}
    schemas: dict[str, dict] = {}
    for (event_type, version), model in sorted(registered_events().items()):
        if event_type not in LOGISTICS_EVENT_TYPES:
            continue
        payload = model.model_json_schema()
        name = f"Ingest{event_type}" + ("" if version == 1 else f"V{version}")
        schemas[name] = {
            "title": f"{event_type} v{version}",
            "type": "object",
            "required": ["event_id", "type", "payload"] + ([] if version == 1 else ["version"]),
            "properties": {
                **common,
                "type": {"const": event_type},
                "version": {"type": "integer", "const": version, **({"default": 1} if version == 1 else {})},
                "payload": payload,
                "key": {**common["key"], "description": "Optional; if given, the payload's customer_id."},
            },
        }
    return schemas


def add_request_schema(openapi: dict) -> dict:
    """Put the request body of POST /api/v1/events, with every bound, into the gateway's OpenAPI document."""
    schemas = _ingest_event_schemas()
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components.update(schemas)
    # no discriminator: a type may have several versions, told apart by `version` (required above v1, default 1)
    components["IngestEvent"] = {"oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in schemas]}
    event = {"$ref": "#/components/schemas/IngestEvent"}
    body = {
        "anyOf": [
            event,
            {"type": "array", "items": event, "minItems": 1},
            {"type": "object", "required": ["events"], "properties": {"events": {"type": "array", "items": event, "minItems": 1}}},
        ]
    }
    operation = openapi["paths"]["/api/v1/events"]["post"]
    operation["requestBody"] = {
        "required": True,
        "description": 'One event, an array of events or {"events": [...]}; at most GATEWAY_INGEST_MAX_BATCH events and '
        "GATEWAY_INGEST_MAX_BODY_BYTES per request. Each event is validated on its own; bounds: docs/events.md.",
        "content": {"application/json": {"schema": body}},
    }
    return openapi
