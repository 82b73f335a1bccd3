"""deploy/k8s: every manifest parses and passes the Kubernetes schema (kubernetes-validate, strict),
kustomizations reference existing files, and the operational rules hold in the rendered overlays."""

from __future__ import annotations

import importlib
import os
import re
import secrets
import subprocess
import sys

import kubernetes_validate
import pytest

from deploy_support import (
    K8S,
    K8S_VERSION,
    REPO,
    SERVICE_BY_FOLDER,
    SERVICE_BY_PREFIX,
    SERVICES,
    kubectl,
    kustomize_build,
    load_yaml,
    load_yaml_docs,
    settings_class,
    unknown_env_vars,
)

KUSTOMIZATIONS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
OVERLAYS = ["dev", "prod"]


# Custom resources the Kubernetes schema does not know: checked by their own tests (KEDA's ScaledObject below)
CUSTOM_API_GROUPS = ("keda.sh/",)


def validate_kubernetes(doc) -> None:
    if not doc["apiVersion"].startswith(CUSTOM_API_GROUPS):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def manifest_files():
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def test_generated_base_is_up_to_date():
    result = subprocess.run([sys.executable, str(K8S / "generate.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_base_and_both_overlays_exist():
    assert {p.relative_to(K8S).as_posix() for p in KUSTOMIZATIONS} >= {"base", "overlays/dev", "overlays/prod"}


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.relative_to(K8S).as_posix())
def test_kustomization_references_existing_files(directory):
    kustomization = load_yaml(directory / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    referenced = list(kustomization.get("resources", []))
    referenced += [p["path"] for p in kustomization.get("patches", []) if "path" in p]
    referenced += kustomization.get("patchesStrategicMerge", [])
    assert referenced
    for ref in referenced:
        target = (directory / ref).resolve()
        assert target.exists(), f"{directory.relative_to(REPO)}: {ref} does not exist"
        if target.is_dir():
            assert (target / "kustomization.yaml").exists(), f"{ref}: a directory without kustomization.yaml"
    # every manifest in the folder is used (no forgotten file)
    used = {(directory / r).resolve() for r in referenced}
    for path in directory.glob("*.yaml"):
        assert path.name == "kustomization.yaml" or path.resolve() in used, f"{path.relative_to(REPO)} is not referenced"


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.relative_to(K8S).as_posix())
def test_every_manifest_file_parses_and_validates(path):
    docs = load_yaml_docs(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), f"{path}: not a Kubernetes object"
        validate_kubernetes(doc)


def test_the_validator_rejects_a_broken_manifest():
    """Guard against a validator that accepts anything (e.g. wrong schema dir)."""
    broken = load_yaml_docs(K8S / "base" / "scoring.yaml")
    deployment = next(d for d in broken if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    if kubectl() is None:
        pytest.skip("kubectl not on PATH: the overlays cannot be rendered here (their files are still validated)")
    return request.param, kustomize_build(K8S / "overlays" / request.param)


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def test_rendered_overlay_validates(rendered):
    overlay, docs = rendered
    assert len(docs) > 30
    for doc in docs:
        validate_kubernetes(doc)
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"crm-dev" if overlay == "dev" else "crm"}


def _partitions(docs) -> int:
    kafka = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "crm-kafka")
    return int(kafka["data"]["KAFKA_TOPIC_PARTITIONS"])


def test_deployments_have_probes_resources_and_run_as_non_root(rendered):
    _overlay, docs = rendered
    for deployment in by_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert set(container["resources"]) == {"requests", "limits"}, deployment["metadata"]["name"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            # the port the probes name is the one the process listens on: uvicorn's PORT, or <PREFIX>_WORKER_HTTP_PORT
            [port] = container["ports"]
            env = {e["name"]: e["value"] for e in container.get("env", [])}
            listens = int(next((v for k, v in env.items() if k.endswith("_WORKER_HTTP_PORT")), 8000))
            assert port["containerPort"] == listens and container["readinessProbe"]["httpGet"]["port"] == port["name"]
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == str(listens)


def test_every_service_has_api_hpa_pdb_and_migration_job(rendered):
    _overlay, docs = rendered
    deployments = {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind(docs, "HorizontalPodAutoscaler")}
    jobs = {j["metadata"]["name"]: j for j in by_kind(docs, "Job")}
    pdb_selectors = [p["spec"]["selector"]["matchLabels"] for p in by_kind(docs, "PodDisruptionBudget")]
    for service in SERVICES:
        api = deployments[f"crm-{service.folder}"]
        assert f"crm-{service.folder}" in hpas, f"no HPA for the {service.folder} API"
        if (service.path / "alembic.ini").exists():
            job = jobs[f"crm-{service.folder}-migrate"]
            assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
        if service.consumes and service.has("worker.py"):
            assert f"crm-{service.folder}-worker" in deployments, f"{service.folder} has a worker module but no worker Deployment"
        if not service.consumes:
            assert f"crm-{service.folder}-worker" not in deployments, f"{service.folder} has no consumers"
        for deployment in [d for n, d in deployments.items() if n.startswith(f"crm-{service.folder}")]:
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert any(all(labels.get(k) == v for k, v in sel.items()) for sel in pdb_selectors), deployment["metadata"]["name"]
        assert api["spec"]["template"]["spec"]["containers"][0]["args"] == ["api"]
    topics = jobs["crm-topics"]["spec"]["template"]["spec"]["containers"][0]
    assert topics["args"][0] == "topics"


def test_consumer_replicas_are_bounded_by_partitions(rendered):
    _overlay, docs = rendered
    partitions = _partitions(docs)
    assert partitions == 6
    workers = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-worker")]
    assert workers
    scalers = {s["spec"]["scaleTargetRef"]["name"]: s for s in by_kind(docs, "ScaledObject")}
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind(docs, "HorizontalPodAutoscaler")}
    for worker in workers:
        name = worker["metadata"]["name"]
        assert worker["spec"]["replicas"] <= partitions
        assert name not in hpas, f"{name}: KEDA runs the worker's HPA; a second one would fight it"
        assert scalers[name]["spec"]["maxReplicaCount"] <= partitions, f"{name} may scale past {partitions} partitions"
        env = {e["name"]: e["value"] for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert any(k.endswith("RUN_CONSUMERS") and v == "true" for k, v in env.items())
    for api in [d for d in by_kind(docs, "Deployment") if not d["metadata"]["name"].endswith("-worker")]:
        env = {e["name"]: e["value"] for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert [v for k, v in env.items() if k.endswith("RUN_CONSUMERS")] == ["false"], "API pods must not join consumer groups"


def test_workers_scale_on_the_lag_of_every_consumer_group_they_run(rendered):
    """One Kafka trigger per consumer group of the worker's service (the handlers' names), reading the broker
    address from the pod's own environment."""
    overlay, docs = rendered
    auths = {a["metadata"]["name"] for a in by_kind(docs, "TriggerAuthentication")}
    assert by_kind(docs, "ScaledObject")
    for scaler in by_kind(docs, "ScaledObject"):
        folder = scaler["spec"]["scaleTargetRef"]["name"].removeprefix("crm-").removesuffix("-worker")
        groups = {t["metadata"]["consumerGroup"] for t in scaler["spec"]["triggers"] if t["type"] == "kafka"}
        assert groups == consumer_groups(folder), folder
        for trigger in (t for t in scaler["spec"]["triggers"] if t["type"] == "kafka"):
            assert trigger["metadata"]["bootstrapServersFromEnv"] == "KAFKA_BOOTSTRAP_SERVERS"
            assert int(trigger["metadata"]["lagThreshold"]) > 0
            if overlay == "prod":  # managed Kafka over SASL_SSL: the scaler needs the workers' credentials too
                assert trigger["authenticationRef"]["name"] in auths and trigger["metadata"]["tls"] == "enable", trigger["name"]
        assert scaler["spec"]["minReplicaCount"] >= 1


def consumer_groups(folder: str) -> set[str]:
    """The consumer groups the service's worker joins: its handlers' names, from its runtime."""
    runtime = importlib.import_module(f"{SERVICE_BY_FOLDER[folder].package}.worker").runtime_from_environment()
    return {consumer.group_id for consumer in runtime.consumers}


def test_gateway_ingress_reaches_the_gateway_pods(rendered):
    _overlay, docs = rendered
    [ingress] = by_kind(docs, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = next(s for s in by_kind(docs, "Service") if s["metadata"]["name"] == backend["name"])
    port = next(p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"])
    gateway = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "crm-gateway")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    container_ports = {p["name"] for p in gateway["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert port["targetPort"] in container_ports


def test_config_and_secret_references_resolve(rendered):
    overlay, docs = rendered
    present = {(d["kind"], d["metadata"]["name"]) for d in docs}
    prod_notes = (K8S / "overlays" / "prod" / "kustomization.yaml").read_text()
    for workload in by_kind(docs, "Deployment") + by_kind(docs, "Job"):
        pod = workload["spec"]["template"]["spec"]
        refs = [("ConfigMap", e["configMapRef"]) for c in pod["containers"] for e in c.get("envFrom", []) if "configMapRef" in e]
        refs += [("Secret", e["secretRef"]) for c in pod["containers"] for e in c.get("envFrom", []) if "secretRef" in e]
        refs += [("Secret", {"name": v["secret"]["secretName"]}) for v in pod.get("volumes", []) if "secret" in v]
        for kind, ref in refs:
            if (kind, ref["name"]) in present or ref.get("optional"):
                continue
            # production secrets are created out of band: the overlay must say how
            assert overlay == "prod" and kind == "Secret", f"{workload['metadata']['name']}: {kind} {ref['name']} missing"
            stem = ref["name"].rsplit("-secrets", 1)[0]
            assert ref["name"] in prod_notes or (stem != ref["name"] and "-secrets" in prod_notes), ref["name"]


def test_env_names_are_known_to_the_settings_classes(rendered):
    _overlay, docs = rendered
    config = {d["metadata"]["name"]: dict(d.get("data") or {}) for d in by_kind(docs, "ConfigMap")}
    config.update({d["metadata"]["name"]: dict(d.get("stringData") or {}) for d in by_kind(docs, "Secret")})
    checked = 0
    for workload in by_kind(docs, "Deployment") + by_kind(docs, "Job"):
        container = workload["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"] for e in container.get("env", [])}
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef") or source.get("secretRef")
            names |= set(config.get(ref["name"], {}))
        service_name = workload["metadata"]["labels"]["app.kubernetes.io/name"]
        prefixes = {n.split("_", 1)[0] + "_" for n in names} & set(SERVICE_BY_PREFIX)
        if service_name == "crm":  # the topic job: Kafka settings only
            assert not prefixes
            continue
        assert len(prefixes) == 1, f"{workload['metadata']['name']}: settings of several services {prefixes}"
        service = SERVICE_BY_PREFIX[prefixes.pop()]
        assert service.folder == service_name
        if settings_class(service) is None:
            continue
        assert unknown_env_vars(names, service) == [], workload["metadata"]["name"]
        checked += 1
    assert checked


def test_the_gateway_names_its_trusted_proxies_explicitly(rendered):
    """X-Forwarded-For counts only from the proxies listed (docs/operations.md); the setting is explicit, and it parses."""
    from crm_gateway.settings import GatewaySettings

    _overlay, docs = rendered
    config = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "crm-gateway-config")
    GatewaySettings.model_validate_json(f'{{"trusted_proxies": {config["data"]["GATEWAY_TRUSTED_PROXIES"]}}}')


def _selects(selector: dict, labels: dict) -> bool:
    assert not selector.get("matchExpressions"), "the test reads matchLabels only"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def test_service_apis_accept_connections_only_from_the_gateway(rendered):
    """Every service API pod is isolated by a NetworkPolicy whose only in-namespace peers are the gateway's pods
    (no worker calls a service's API today); Prometheus in `monitoring` may scrape /metrics."""
    _overlay, docs = rendered
    policies = [p for p in by_kind(docs, "NetworkPolicy") if "Ingress" in p["spec"]["policyTypes"]]
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in by_kind(docs, "Deployment") + by_kind(docs, "Job")}
    for service in SERVICES:
        if service.folder == "gateway":
            continue
        api = pods[f"crm-{service.folder}"]
        selecting = [p for p in policies if _selects(p["spec"]["podSelector"], api)]
        assert selecting, f"no NetworkPolicy isolates the {service.folder} API"
        rules = [rule for p in selecting for rule in p["spec"].get("ingress", [])]
        assert rules and all(rule.get("from") for rule in rules), f"{service.folder}: a rule open to every source"
        assert all(rule.get("ports") == [{"protocol": "TCP", "port": "http"}] for rule in rules)
        peers = [peer for rule in rules for peer in rule["from"]]
        pod_peers = [peer["podSelector"] for peer in peers if set(peer) == {"podSelector"}]
        assert [peer for peer in peers if set(peer) != {"podSelector"}] == [MONITORING], service.folder
        reaching = {name for name, labels in pods.items() if any(_selects(peer, labels) for peer in pod_peers)}
        assert reaching == {"crm-gateway"}, f"{service.folder} API reachable from {reaching}"


def test_the_gateway_and_every_api_get_the_edge_token_key(rendered):
    _overlay, docs = rendered
    apis = [d for d in by_kind(docs, "Deployment") if d["spec"]["template"]["spec"]["containers"][0]["args"] == ["api"]]
    assert len(apis) == len(SERVICES)
    for deployment in apis:
        sources = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"secretRef": {"name": "crm-edge-token"}} in sources, deployment["metadata"]["name"]


def _config_of(docs) -> dict[str, dict]:
    return {d["metadata"]["name"]: dict(d.get("data") or {}) for d in by_kind(docs, "ConfigMap")}


def test_every_process_reads_the_production_switch_and_no_config_map_holds_a_secret(rendered):
    """CRM_ENVIRONMENT (crm_common.production) reaches every API and worker: production in the prod overlay, development
    in the dev overlay (its example secrets); secrets come only from Secrets."""
    overlay, docs = rendered
    config = _config_of(docs)
    assert config["crm-deployment"]["CRM_ENVIRONMENT"] == ("production" if overlay == "prod" else "development")
    for workload in by_kind(docs, "Deployment"):
        sources = workload["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": "crm-deployment"}} in sources, workload["metadata"]["name"]
    for name, data in config.items():
        for key, value in data.items():
            assert not re.search(r"PASSWORD|SECRET|JWT_KEYS|SIGNING_KEY|TOKEN|DATABASE_URL", key), f"{name}: {key} in a ConfigMap"
            assert "@" not in value or "://" not in value, f"{name}: credentials in {key}"


def test_the_prod_overlay_passes_the_production_checks_given_its_secrets(rendered, monkeypatch):
    """Each API and worker with the prod overlay's ConfigMaps, and its Secrets filled with real-looking values and a
    PostgreSQL URL with TLS, starts: the ConfigMaps turn nothing unsafe on (plain-text Kafka, demo login)."""
    from crm_common.production import production_problems

    overlay, docs = rendered
    if overlay != "prod":
        pytest.skip("the dev overlay runs in development")
    config = _config_of(docs)
    for workload in by_kind(docs, "Deployment"):
        container = workload["spec"]["template"]["spec"]["containers"][0]
        service = SERVICE_BY_FOLDER[workload["metadata"]["labels"]["app.kubernetes.io/name"]]
        for name in list(os.environ):
            if name.startswith(("CRM_", "KAFKA_", service.prefix)):
                monkeypatch.delenv(name)
        for source in container["envFrom"]:
            for key, value in config.get(source.get("configMapRef", {}).get("name"), {}).items():
                monkeypatch.setenv(key, value)
        for item in container.get("env", []):
            monkeypatch.setenv(item["name"], item["value"])
        secret_names = {s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s}
        monkeypatch.setenv(f"{service.prefix}DATABASE_URL", "postgresql://crm:pw@db.internal:5432/crm?ssl=verify-full")
        monkeypatch.setenv("KAFKA_SASL_PLAIN_PASSWORD", secrets.token_hex(16))
        if "crm-edge-token" in secret_names:
            monkeypatch.setenv("CRM_EDGE_TOKEN_KEY", secrets.token_hex(32))
        settings = settings_class(service)()
        filled = {name: secrets.token_hex(16) for name in settings.production_secrets()}
        problems = production_problems(settings.model_copy(update=_fields_for(settings, filled)), serves_api=container["args"] == ["api"])
        assert problems == [], workload["metadata"]["name"]


def _fields_for(settings, filled: dict[str, str]) -> dict:
    """Settings fields holding the secrets named (by environment variable) in `filled`, set to those values."""
    from pydantic import SecretStr

    update = {}
    for field in type(settings).model_fields:
        if settings.env_name(field) in filled:
            update[field] = SecretStr(filled[settings.env_name(field)])
    if any(name.startswith("GATEWAY_JWT") for name in filled):
        key = {"kid": "prod-1", "alg": "HS256", "secret": SecretStr(secrets.token_hex(32))}
        update |= {"jwt_keys": [key], "jwt_signing_key": key}
    return update
