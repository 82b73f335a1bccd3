"""deploy/compose/docker-compose.yml: structure, images built from our Dockerfile, env names the code reads."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from deploy_support import (
    COMPOSE_FILE,
    REPO,
    SERVICE_BY_FOLDER,
    SERVICES,
    load_yaml,
    read_env_file,
    settings_class,
    unknown_env_vars,
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE_FILE)


def built_service(spec: dict) -> str | None:
    build = spec.get("build")
    return build["args"]["SERVICE"] if build else None


def env_of(spec: dict) -> dict[str, str]:
    """Environment of a container: its env_file examples overlaid by `environment`."""
    values: dict[str, str] = {}
    for env_file in spec.get("env_file", []):
        path = env_file["path"] if isinstance(env_file, dict) else env_file
        values.update(read_env_file(COMPOSE_FILE.parent / (path + ".example")))
    values.update({k: str(v) for k, v in (spec.get("environment") or {}).items()})
    return values


def test_infrastructure_is_kraft_kafka_postgres_and_a_topic_job(compose):
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "zookeeper" not in services
    assert services["postgres"]["image"].startswith("postgres:")
    init = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and (COMPOSE_FILE.parent / init[0].split(":")[0]).exists()
    topics = services["topics"]
    assert topics["command"][0] == "topics"
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_every_service_has_api_worker_and_a_migration_that_runs_first(compose):
    services = compose["services"]
    for service in SERVICES:
        name = service.folder
        assert name in services, f"{name}: no API container"
        api = services[name]
        assert built_service(api) == name
        assert "command" not in api, "the API runs the image's default command (uvicorn)"
        migrate = services[f"{name}-migrate"]
        assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        has_worker = service.consumes and service.has("worker.py")
        assert has_worker or f"{name}-worker" not in services, f"{name} has no consumers: a worker would only relay"
        containers = [name] + ([f"{name}-worker"] if has_worker else [])
        for container in containers:
            spec = services[container]
            assert spec["depends_on"][f"{name}-migrate"]["condition"] == "service_completed_successfully", container
            assert spec["depends_on"]["topics"]["condition"] == "service_completed_successfully", container
        if has_worker:
            assert services[f"{name}-worker"]["command"] == ["worker"]


def test_only_the_gateway_is_published(compose):
    published = {name for name, spec in compose["services"].items() if spec.get("ports")}
    assert published == {"gateway"}
    assert compose["services"]["gateway"]["ports"] == ["${CRM_GATEWAY_PORT:-8080}:8000"]


def test_builds_use_the_one_dockerfile_and_existing_service_folders(compose):
    for name, spec in compose["services"].items():
        build = spec.get("build")
        if build is None:
            assert not spec["image"].startswith("${CRM_REGISTRY"), f"{name} uses our image without a build section"
            continue
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        assert context == REPO
        assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} missing"
        service = build["args"]["SERVICE"]
        assert (REPO / "services" / service / "pyproject.toml").is_file(), f"{name}: services/{service} has no pyproject.toml"
        assert spec["image"].endswith(f"/{service}:${{CRM_TAG:-dev}}")


def test_secrets_come_from_untracked_env_files(compose):
    for name, spec in compose["services"].items():
        for env_file in spec.get("env_file", []):
            path = env_file["path"] if isinstance(env_file, dict) else env_file
            assert path.endswith(".env"), path
            assert (COMPOSE_FILE.parent / (path + ".example")).is_file(), f"{name}: {path}.example missing"
        for key, value in (spec.get("environment") or {}).items():
            assert not re.search(r"PASSWORD|SECRET|JWT_KEYS|TOKEN", key) or value is None, f"{name}: {key} inline in compose"
            assert "://" not in str(value) or "@" not in str(value), f"{name}: credentials inline in {key}"
    tracked = subprocess.run(["git", "ls-files", "deploy/compose/env"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert tracked, "env examples not committed"
    assert all(p.endswith(".env.example") or p.endswith(".gitignore") for p in tracked), tracked
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/compose/env/scoring.env"], cwd=REPO)
    assert ignored.returncode == 0, "deploy/compose/env/*.env must be git-ignored"


@pytest.mark.parametrize("folder", [s.folder for s in SERVICES])
def test_env_vars_are_known_to_the_settings_classes(compose, folder):
    service = SERVICE_BY_FOLDER[folder]
    if settings_class(service) is None:
        pytest.skip(f"services/{folder}/{service.package}/settings.py does not exist yet")
    containers = [n for n, spec in compose["services"].items() if built_service(spec) == folder and n != "topics"]
    assert containers
    for container in containers:
        names = env_of(compose["services"][container])
        assert f"{service.prefix}DATABASE_URL" in names, f"{container}: no database URL"
        assert unknown_env_vars(names, service) == [], f"{container}: variables no settings class reads"


def test_topic_job_env_is_kafka_settings_only(compose):
    from deploy_support import kafka_env_names

    names = set(env_of(compose["services"]["topics"]))
    assert names and names <= kafka_env_names(), names - kafka_env_names()


def test_database_passwords_and_names_agree_with_the_postgres_init_script(compose):
    init = (COMPOSE_FILE.parent / "postgres" / "init-databases.sh").read_text()
    postgres_env = read_env_file(COMPOSE_FILE.parent / "env" / "postgres.env.example")
    created = dict(re.findall(r'^create (\w+)\s+"\$\{(\w+):-\}"', init, re.M))
    assert len(created) == len(SERVICES)
    for service in SERVICES:
        url = env_of(compose["services"][service.folder])[f"{service.prefix}DATABASE_URL"]
        match = re.fullmatch(r"postgresql://(\w+):([^@]+)@postgres:5432/(\w+)", url)
        assert match, url
        user, password, database = match.groups()
        assert user == database and database in created, f"{service.folder}: database {database} not created"
        assert postgres_env[created[database]] == password, f"{service.folder}: password differs from postgres.env"


def test_shell_scripts_parse():
    for script in ["deploy/compose/init-env.sh", "deploy/compose/postgres/init-databases.sh", "deploy/docker/entrypoint.sh"]:
        result = subprocess.run(["sh", "-n", str(REPO / script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


def test_init_env_makes_consistent_random_secrets(tmp_path):
    import shutil

    work = tmp_path / "compose"
    shutil.copytree(COMPOSE_FILE.parent / "env", work / "env", ignore=shutil.ignore_patterns("*.env"))
    shutil.copy(COMPOSE_FILE.parent / "init-env.sh", work / "init-env.sh")
    subprocess.run(["sh", str(work / "init-env.sh")], check=True, capture_output=True)
    postgres = read_env_file(work / "env" / "postgres.env")
    scoring = read_env_file(work / "env" / "scoring.env")
    assert "change-me" not in (work / "env" / "gateway.env").read_text()
    assert f":{postgres['CRM_DB_PASSWORD_SCORING']}@" in scoring["SCORING_DATABASE_URL"]
    assert postgres["CRM_DB_PASSWORD_SCORING"] != postgres["CRM_DB_PASSWORD_PROFILE"]
    assert len(postgres["CRM_DB_PASSWORD_SCORING"]) >= 32


def test_the_gateway_names_its_trusted_proxies_explicitly(compose):
    """X-Forwarded-For counts only from the proxies listed; the setting is explicit, and it parses."""
    from crm_gateway.settings import GatewaySettings

    value = env_of(compose["services"]["gateway"])["GATEWAY_TRUSTED_PROXIES"]
    GatewaySettings.model_validate_json(f'{{"trusted_proxies": {value}}}')


def _generated_env_files(tmp_path):
    """env/*.env as init-env.sh makes them from the committed examples (random secrets)."""
    import shutil

    work = tmp_path / "compose"
    shutil.copytree(COMPOSE_FILE.parent / "env", work / "env", ignore=shutil.ignore_patterns("*.env"))
    shutil.copy(COMPOSE_FILE.parent / "init-env.sh", work / "init-env.sh")
    subprocess.run(["sh", str(work / "init-env.sh")], check=True, capture_output=True)
    return work


def _production_problems_of(spec: dict, service, env_dir, monkeypatch) -> list[str]:
    """What crm_common.production says of a container started with its env files (from `env_dir`) and environment."""
    from crm_common.production import production_problems

    values: dict[str, str] = {}
    for env_file in spec.get("env_file", []):
        path = env_file["path"] if isinstance(env_file, dict) else env_file
        values.update(read_env_file(env_dir / path))
    values.update({k: str(v) for k, v in (spec.get("environment") or {}).items()})
    for name in list(os.environ):
        if name.startswith(("CRM_", "KAFKA_", service.prefix)):
            monkeypatch.delenv(name)
    for name, value in values.items():  # compose strips one pair of quotes around an env-file value
        monkeypatch.setenv(name, value[1:-1] if len(value) > 1 and value[0] == value[-1] == "'" else value)
    return production_problems(settings_class(service)(), serves_api=spec.get("command") != ["worker"])


def test_every_api_and_worker_runs_in_production_and_starts_with_the_generated_secrets(compose, tmp_path, monkeypatch):
    """CRM_ENVIRONMENT=production everywhere; with init-env.sh's secrets nothing is refused (plain text on the private
    network is allowed explicitly), and with the committed placeholders every secret is."""
    generated = _generated_env_files(tmp_path)
    checked = 0
    for name, spec in compose["services"].items():
        folder = built_service(spec)
        if folder is None or spec.get("command") in (["migrate"], ["topics", "--retention-days", "30", "--dlq-retention-days", "90"]):
            continue
        assert spec["environment"]["CRM_ENVIRONMENT"] == "production", name
        assert spec["environment"]["CRM_ALLOW_PLAINTEXT"] == "true", name
        service = SERVICE_BY_FOLDER[folder]
        assert _production_problems_of(spec, service, generated, monkeypatch) == [], name
        placeholders = {**spec, "env_file": [f + ".example" for f in spec["env_file"]]}
        refused = " ".join(_production_problems_of(placeholders, service, COMPOSE_FILE.parent, monkeypatch))
        assert "CRM_EDGE_TOKEN_KEY" in refused or spec.get("command") == ["worker"], name
        if folder == "notifications":
            for secret in ("WEBHOOK_SECRET", "UNSUBSCRIBE_SECRET", "ERASURE_SECRET", "PROVIDER_TOKEN", "SMTP_PASSWORD"):
                assert f"NOTIFICATIONS_{secret}" in refused, name
        if folder == "gateway":
            assert "GATEWAY_JWT_KEYS" in refused and "GATEWAY_JWT_SIGNING_KEY" in refused
        checked += 1
    assert checked == 9  # five APIs and four workers
