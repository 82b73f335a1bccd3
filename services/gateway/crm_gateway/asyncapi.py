"""Builds docs/asyncapi.yaml from the pydantic event models, so the document cannot drift from the code.

python -m crm_gateway.asyncapi            # rewrite docs/asyncapi.yaml
python -m crm_gateway.asyncapi --check    # exit 1 when the committed file is stale
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from crm_common.events import TOPICS, EventEnvelope, registered_events
from crm_common.events.logistics import LOGISTICS_EVENT_TYPES

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"

TOPIC_DESCRIPTIONS = {
    "crm.customers": "Customer master changes, published by customer-profile.",
    "logistics.orders": "Orders and shipments from TMS/WMS: through the gateway (POST /api/v1/events) or published here directly.",
    "finance.payments": "Invoices paid or overdue, from billing/ERP: through the gateway or published here directly.",
    "crm.complaints": "Complaint lifecycle, published by the complaints service.",
    "crm.scoring": "Scores, tier changes and churn alerts, published by the scoring service.",
    "crm.notifications": "Notification outcomes, published by the notifications service.",
}


def _schema_name(event_type: str, version: int) -> str:
    return event_type if version == 1 else f"{event_type}V{version}"


def build() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    by_type: dict[str, list[str]] = {}
    for (event_type, version), model in sorted(registered_events().items()):
        name = _schema_name(event_type, version)
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[name] = schema
        messages[name] = {
            "name": name,
            "title": f"{event_type} v{version}",
            "summary": (model.__doc__ or "").strip().split("\n")[0] or f"{event_type} event",
            "contentType": "application/json",
            "bindings": {
                "kafka": {"key": {"type": "string", "description": "The customer id (partitioning key)."}, "bindingVersion": "0.4.0"}
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/EventEnvelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string", "const": event_type},
                            "version": {"type": "integer", "const": version},
                            "payload": {"$ref": f"#/components/schemas/{name}"},
                        },
                    },
                ]
            },
        }
        by_type.setdefault(event_type, []).append(name)
    envelope = EventEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    envelope["description"] = (
        "Every event travels in this envelope. `key` is the customer id and the Kafka message key; "
        "`event_id` is the idempotency key (consumers drop repeats)."
    )
    schemas["EventEnvelope"] = envelope

    channels: dict[str, Any] = {}
    for topic, types in TOPICS.items():
        refs = [{"$ref": f"#/components/messages/{name}"} for t in types for name in by_type.get(t, [])]
        message = {"oneOf": refs} if len(refs) > 1 else refs[0]
        channel: dict[str, Any] = {
            "description": TOPIC_DESCRIPTIONS.get(topic, topic) + f" Dead letters: `{topic}.dlq`.",
            "bindings": {"kafka": {"topic": topic, "bindingVersion": "0.4.0"}},
            "subscribe": {
                "operationId": f"receive_{topic.replace('.', '_')}",
                "summary": f"Events on {topic}",
                "message": copy.deepcopy(message),
            },
        }
        if any(t in LOGISTICS_EVENT_TYPES for t in types):
            channel["publish"] = {
                "operationId": f"send_{topic.replace('.', '_')}",
                "summary": "TMS/WMS/billing systems that speak Kafka may publish here directly (same envelope, key = customer id).",
                "message": copy.deepcopy(message),
            }
        channels[topic] = channel
    return {
        "asyncapi": "2.6.0",
        "id": "urn:crm:3pl:events",
        "info": {
            "title": "3PL CRM events",
            "version": "1.0.0",
            "description": (
                "Topics and payload schemas of the 3PL CRM. Generated from crm_common.events by "
                "`python -m crm_gateway.asyncapi`; do not edit by hand. Topic names are logical: a deployment "
                "may add KAFKA_TOPIC_PREFIX. HTTP producers use POST /api/v1/events on the gateway (docs/gateway.md)."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"kafka": {"url": "{bootstrap}", "protocol": "kafka", "variables": {"bootstrap": {"default": "127.0.0.1:9092"}}}},
        "channels": channels,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def render() -> str:
    return "# Generated by `python -m crm_gateway.asyncapi` from crm_common.events. Do not edit.\n" + yaml.safe_dump(
        build(), sort_keys=False, allow_unicode=True, width=120
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is stale: run python -m crm_gateway.asyncapi", file=sys.stderr)
            return 1
        return 0
    args.path.write_text(text, encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
