"""docs/asyncapi.yaml is generated from the event models and must be up to date."""

from __future__ import annotations

import yaml

from crm_common.events import TOPICS, registered_events
from crm_gateway.asyncapi import DEFAULT_PATH, build, main, render


def _refs(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.append(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)
    return found


def test_committed_asyncapi_is_up_to_date():
    assert DEFAULT_PATH.read_text(encoding="utf-8") == render(), "run: python -m crm_gateway.asyncapi"
    assert main(["--check"]) == 0


def test_asyncapi_documents_every_topic_and_event_and_all_refs_resolve():
    doc = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("2.6")
    assert set(doc["channels"]) == set(TOPICS)
    assert {name for (name, version) in registered_events()} <= set(doc["components"]["messages"])
    assert "publish" in doc["channels"]["logistics.orders"] and "publish" not in doc["channels"]["crm.complaints"]
    for ref in _refs(doc, []):
        section, name = ref.split("/")[2:4]
        assert name in doc["components"][section], ref
    order = doc["components"]["schemas"]["OrderCreated"]
    assert {"order_id", "customer_id", "order_date", "amount"} <= set(order["required"])


def test_check_mode_detects_a_stale_file(tmp_path):
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(yaml.safe_dump(build()).replace("OrderCreated", "OrderMade"))
    assert main(["--check", "--path", str(stale)]) == 1
