"""deploy/monitoring: the Prometheus alert rules and the Grafana dashboard name only metrics the code exports, the
rules pass promtool (and fire when they should), and compose's Prometheus scrapes every API and worker."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess

import pytest
from prometheus_client import REGISTRY

from deploy_support import COMPOSE_FILE, DEPLOY, SERVICES, load_yaml

MONITORING = DEPLOY / "monitoring"
ALERTS = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself for every target
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",), "summary": ("", "_sum", "_count")}


def exported_metric_names() -> set[str]:
    """Every series name the processes can export: the shared metrics and each service's own (its modules imported)."""
    for service in SERVICES:
        importlib.import_module(f"{service.package}.main")
        if (service.package_path / "metrics.py").exists():
            importlib.import_module(f"{service.package}.metrics")
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: identifiers followed by a selector, range, or an operator/paren."""
    without_labels = re.sub(r"\{[^}]*\}", "{}", expr)
    without_strings = re.sub(r'"[^"]*"', '""', without_labels)
    without_strings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", without_strings)
    tokens = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[|\)|\s*[<>=!]=?|\s*[-+*/]|$)", without_strings))
    keywords = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "le"}
    return {t for t in tokens if t not in keywords and not t.isdigit()}


def alert_expressions() -> dict[str, str]:
    return {rule["alert"]: rule["expr"] for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {panel["title"]: target["expr"] for panel in dashboard["panels"] for target in panel["targets"]}


def test_the_metric_name_parser_finds_what_an_expression_selects():
    assert metric_names('sum by (consumer) (increase(crm_dlq_messages_total{topic=~"a.b"}[10m])) > 0') == {"crm_dlq_messages_total"}
    assert metric_names("max(crm_outbox_backlog) / max(crm_x_total)") == {"crm_outbox_backlog", "crm_x_total"}


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_named_is_one_the_code_exports(source):
    expressions = alert_expressions() if source == "alerts" else dashboard_expressions()
    assert expressions
    exported = exported_metric_names() | PROMETHEUS_OWN
    for name, expr in expressions.items():
        named = metric_names(expr)
        assert named, f"{name}: no metric found in {expr!r}"
        assert named <= exported, f"{name}: {sorted(named - exported)} is not exported by any process"


def test_operators_are_told_to_alert_on_a_metric_an_alert_uses():
    """docs/operations.md says to alert on crm_dlq_messages_total: a rule does, and the consumer increments it."""
    assert any("crm_dlq_messages_total" in expr for expr in alert_expressions().values())


def test_compose_prometheus_scrapes_every_api_and_worker():
    compose = load_yaml(COMPOSE_FILE)["services"]
    processes = {
        f"{name}:{9000 if spec.get('command') == ['worker'] else 8000}"
        for name, spec in compose.items()
        if spec.get("build") and spec.get("command") in (None, ["worker"])
    }
    assert len(processes) == 9  # five APIs, four workers
    config = load_yaml(COMPOSE_FILE.parent / "prometheus.yml")
    targets = {t for job in config["scrape_configs"] for static in job["static_configs"] for t in static["targets"]}
    assert targets == processes
    mounts = compose["prometheus"]["volumes"]
    assert "../monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts and config["rule_files"] == ["/etc/prometheus/alerts.yml"]


promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(promtool is None, reason="promtool not installed (Debian package `prometheus`)")


@needs_promtool
def test_promtool_accepts_the_rules_and_the_compose_configuration(tmp_path):
    subprocess.run([promtool, "check", "rules", str(ALERTS)], check=True, capture_output=True)
    config = (COMPOSE_FILE.parent / "prometheus.yml").read_text().replace("/etc/prometheus/alerts.yml", str(ALERTS))
    (tmp_path / "prometheus.yml").write_text(config)
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_dead_letter_and_outbox_alerts_fire_on_their_series(tmp_path):
    """promtool's rule unit test: a dead letter fires CrmDeadLetters at once; an outbox row waiting 10 minutes fires
    CrmOutboxStuck after its 5 minutes; a quiet series fires nothing."""
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'crm_dlq_messages_total{consumer="scoring",topic="logistics.orders"}', "values": "0 0 1 1 1"},
                    {"series": 'crm_outbox_oldest_pending_age_seconds{service="scoring"}', "values": "0+60x20"},
                    {"series": 'crm_outbox_backlog{service="complaints"}', "values": "3x20"},
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "CrmDeadLetters", "exp_alerts": []},
                    {
                        "eval_time": "3m",
                        "alertname": "CrmDeadLetters",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "consumer": "scoring", "topic": "logistics.orders"},
                                "exp_annotations": {
                                    "summary": "scoring dead-lettered messages of logistics.orders",
                                    "description": "A handler gave up on events (or they were not valid). List and replay them with "
                                    "`crm-dlq list --service S` once the cause is fixed (docs/operations.md).",
                                },
                            }
                        ],
                    },
                    {"eval_time": "7m", "alertname": "CrmOutboxStuck", "exp_alerts": []},
                    {
                        "eval_time": "12m",
                        "alertname": "CrmOutboxStuck",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "service": "scoring"},
                                "exp_annotations": {
                                    "summary": "scoring: an outbox row has waited 12m 0s for the broker",
                                    "description": "Accepted writes are safe in the outbox but do not reach the other services: is Kafka "
                                    "reachable, does a relay run?",
                                },
                            }
                        ],
                    },
                    {"eval_time": "20m", "alertname": "CrmOutboxBacklog", "exp_alerts": []},
                ],
            }
        ],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(json.dumps(tests))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
