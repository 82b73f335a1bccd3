"""The image's `api` command (deploy/docker/entrypoint.sh, run here outside the image) serves the gateway so that
X-Forwarded-For picks the client address only from a peer in GATEWAY_TRUSTED_PROXIES: rotating the header from
anywhere else does not escape the anonymous rate limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from crm_common.migrations import upgrade
from crm_devbroker.testing import free_loopback_port
from deploy_support import REPO

ENTRYPOINT = REPO / "deploy" / "docker" / "entrypoint.sh"
ANONYMOUS_ROUTE = "/api/v1/auth/demo-users"


def serve_gateway(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    database = f"sqlite:///{tmp_path / 'gateway.db'}"
    if not (tmp_path / "gateway.db").exists():
        upgrade(REPO / "services" / "gateway" / "alembic.ini", database)
    port = free_loopback_port()
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "CRM_PACKAGE": "crm_gateway",
        "PORT": str(port),
        "GATEWAY_DATABASE_URL": database,
        "GATEWAY_RUN_CONSUMERS": "false",
        "GATEWAY_RUN_OUTBOX_RELAY": "false",
        "GATEWAY_LOG_JSON": "false",
        "GATEWAY_RATE_LIMITS": '{"anonymous": [0.01, 3]}',
        **env,
    }
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "api", "--host", "127.0.0.1"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    stop(process)
    pytest.fail("the gateway did not start with the image's api command")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def statuses_with_rotating_header(url: str) -> list[int]:
    return [httpx.get(url + ANONYMOUS_ROUTE, headers={"X-Forwarded-For": f"203.0.113.{n}"}, timeout=10).status_code for n in range(6)]


def test_rotating_x_forwarded_for_does_not_escape_the_limit_under_the_image_command(tmp_path):
    process, url = serve_gateway(tmp_path)
    try:
        assert statuses_with_rotating_header(url) == [200, 200, 200, 429, 429, 429]
    finally:
        stop(process)


def test_the_header_is_honoured_when_the_peer_is_a_configured_proxy(tmp_path):
    process, url = serve_gateway(tmp_path, GATEWAY_TRUSTED_PROXIES='["127.0.0.1"]')
    try:
        assert statuses_with_rotating_header(url) == [200] * 6  # six clients behind the proxy, one bucket each
    finally:
        stop(process)
