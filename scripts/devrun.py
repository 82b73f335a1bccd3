"""`make run`: the broker, every service on SQLite under var/, migrations, demo data, URLs.

Ctrl-C stops everything this script started. Ports are fixed (see docs/architecture.md); CRM_PORT_BASE
moves the five service ports together (gateway on the base, the others on base+1..base+4), so two
checkouts can run side by side.
"""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
sys.path.insert(0, str(ROOT / "scripts"))


@dataclass
class Service:
    name: str
    package: str
    prefix: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def present(self) -> bool:
        return importlib.util.find_spec(self.package) is not None


PORT_BASE = int(os.environ.get("CRM_PORT_BASE", "8000"))
SERVICES = [
    Service("customer-profile", "crm_profile", "PROFILE_", PORT_BASE + 1),
    Service("scoring", "crm_scoring", "SCORING_", PORT_BASE + 2),
    Service("complaints", "crm_complaints", "COMPLAINTS_", PORT_BASE + 3),
    Service("notifications", "crm_notifications", "NOTIFICATIONS_", PORT_BASE + 4),
    Service("gateway", "crm_gateway", "GATEWAY_", PORT_BASE),
]


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def service_env(service: Service, bootstrap: str) -> dict[str, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "1000",
        "KAFKA_CONSUMER_JOIN_WATCHDOG_S": "20",
        f"{service.prefix}DATABASE_URL": f"sqlite:///{VAR / (service.name + '.db')}",
        f"{service.prefix}LOG_JSON": "false",
        "GATEWAY_PROFILE_URL": SERVICES[0].url,
        "GATEWAY_SCORING_URL": SERVICES[1].url,
        "GATEWAY_COMPLAINTS_URL": SERVICES[2].url,
        "GATEWAY_NOTIFICATIONS_URL": SERVICES[3].url,
    }
    return env


def migrate(service: Service, env: dict[str, str]) -> None:
    module = importlib.import_module(service.package)
    alembic_ini = getattr(module, "ALEMBIC_INI", ROOT / "services" / service.name / "alembic.ini")
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(alembic_ini), "upgrade", "head"],
        env=env,
        check=True,
        cwd=ROOT,
    )


def wait_healthy(service: Service, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(service.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{service.name} did not become healthy on {service.url}")


def main() -> int:
    from crm_common.broker import LocalBroker
    from crm_common.bus import ensure_topics
    from crm_common.events.topics import ALL_TOPICS
    from crm_common.settings import KafkaSettings

    VAR.mkdir(exist_ok=True)
    broker = LocalBroker(port=9092 if PORT_BASE == 8000 and port_free(9092) else None, log_path=VAR / "tansu.log").start()
    asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=broker.bootstrap), ALL_TOPICS, 6))
    print(f"broker (Tansu, in memory) on {broker.bootstrap}", flush=True)
    processes: list[subprocess.Popen] = []
    running = [s for s in SERVICES if s.present]
    try:
        for service in running:
            if not port_free(service.port):
                raise SystemExit(f"port {service.port} for {service.name} is taken; stop what uses it and retry")
            env = service_env(service, broker.bootstrap)
            migrate(service, env)
            log = open(VAR / f"{service.name}.log", "ab")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", f"{service.package}.main:app", "--host", "127.0.0.1", "--port", str(service.port),
                     "--no-proxy-headers"],  # as in the image: only the gateway reads X-Forwarded-For, from GATEWAY_TRUSTED_PROXIES
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for service in running:
            wait_healthy(service)
        import demo_seed

        summary = asyncio.run(demo_seed.seed({s.name: s.url for s in running}, broker.bootstrap))
        print("\nThe 3PL CRM is running (logs in var/*.log):", flush=True)
        for service in running:
            print(f"  {service.name:<17} {service.url}/docs")
        if any(s.name == "gateway" for s in running):
            print(f"\n  console           {SERVICES[4].url}/console   (demo login: {summary.get('login', 'see docs/gateway.md')})")
        print(f"\n  demo data: {summary.get('text', '')}")
        print("\nCtrl-C stops everything.", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a service exited; see var/*.log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
