"""Helpers of the deployment validation tests (tests/deploy): repo paths, settings env names, YAML."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose" / "docker-compose.yml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
DOCKERIGNORE = DEPLOY / "docker" / "Dockerfile.dockerignore"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"  # oldest Kubernetes minor the manifests must be valid for


@dataclass(frozen=True)
class ServiceInfo:
    folder: str  # services/<folder>
    package: str
    prefix: str
    consumes: bool = True  # has Kafka consumers: needs worker replicas (the gateway only relays its outbox)

    @property
    def path(self) -> Path:
        return REPO / "services" / self.folder

    @property
    def package_path(self) -> Path:
        return self.path / self.package

    def has(self, relative: str) -> bool:
        return (self.package_path / relative).exists()


SERVICES = (
    ServiceInfo("customer-profile", "crm_profile", "PROFILE_"),
    ServiceInfo("scoring", "crm_scoring", "SCORING_"),
    ServiceInfo("complaints", "crm_complaints", "COMPLAINTS_"),
    ServiceInfo("notifications", "crm_notifications", "NOTIFICATIONS_"),
    ServiceInfo("gateway", "crm_gateway", "GATEWAY_", consumes=False),
)
SERVICE_BY_FOLDER = {s.folder: s for s in SERVICES}
SERVICE_BY_PREFIX = {s.prefix: s for s in SERVICES}

# Variables read by something other than the settings classes (libraries inside the image).
OTHER_KNOWN_ENV = {"MPLCONFIGDIR", "PORT", "PYTHONUNBUFFERED"}


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def load_yaml_docs(path_or_text) -> list[dict]:
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    return [doc for doc in yaml.safe_load_all(text) if doc]


def settings_class(service: ServiceInfo):
    """The service's ServiceSettings subclass, or None while its package has no settings module."""
    from crm_common.settings import ServiceSettings

    if not (service.package_path / "settings.py").exists():
        return None
    if importlib.util.find_spec(service.package) is None:  # folder exists, not pip-installed (yet)
        sys.path.append(str(service.path))
    module = importlib.import_module(f"{service.package}.settings")
    candidates = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, ServiceSettings)
        and obj is not ServiceSettings
        and obj.model_config.get("env_prefix") == service.prefix
    ]
    assert candidates, f"{service.package}.settings has no ServiceSettings subclass with env_prefix {service.prefix!r}"
    return candidates[0]


def env_names(settings_cls) -> tuple[set[str], set[str]]:
    """(exact names, nested-name prefixes) that a pydantic-settings class reads from the environment."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    delimiter = settings_cls.model_config.get("env_nested_delimiter")
    exact, nested = set(), set()
    for name in settings_cls.model_fields:
        env = (prefix + name).upper()
        exact.add(env)
        if delimiter:
            nested.add(env + delimiter.upper())
    return exact, nested


def kafka_env_names() -> set[str]:
    from crm_common.settings import KafkaSettings

    return env_names(KafkaSettings)[0]


def shared_env_names() -> set[str]:
    """What every service reads besides its own prefix: KafkaSettings (KAFKA_), EdgeTokenSettings and
    DeploymentSettings (CRM_)."""
    from crm_common.production import DeploymentSettings
    from crm_common.settings import EdgeTokenSettings

    return kafka_env_names() | env_names(EdgeTokenSettings)[0] | env_names(DeploymentSettings)[0]


def unknown_env_vars(names, service: ServiceInfo) -> list[str]:
    """Names a container of `service` is given that neither its settings nor the shared settings read."""
    exact, nested = env_names(settings_class(service))
    shared = shared_env_names()
    unknown = []
    for name in names:
        if name in OTHER_KNOWN_ENV or name in shared or name in exact:
            continue
        if any(name.startswith(p) for p in nested):
            continue
        unknown.append(name)
    return sorted(unknown)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not KEY=VALUE: {line!r}"
        values[key.strip()] = value.strip()
    return values


def kubectl() -> str | None:
    return shutil.which("kubectl")


def kustomize_build(directory: Path) -> list[dict]:
    """Render a kustomization with `kubectl kustomize` (offline)."""
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return load_yaml_docs(result.stdout)


def docker_available() -> tuple[bool, str]:
    docker = shutil.which("docker")
    if docker is None:
        return False, "no docker CLI on PATH"
    try:
        result = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False, "`docker info` timed out"
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        return False, f"`docker info` failed: {reason[-1] if reason else 'no output'}"
    return True, ""
