"""`make run`: the broker, every service and worker under supervisord, migrations, demo data into an empty installation.

supervisord (the `supervisor` package) restarts whatever exits: a service, a worker or the broker (with backoff
when it keeps dying at start, a log line each time); the rest keeps running. The broker is `crm-broker`, which
starts Tansu and creates the topics, so a restarted (and therefore empty) broker has its topics again before the
services need them. Ctrl-C (or SIGTERM) stops the services and workers gracefully, all at once (consumers commit
the batch in hand, relays flush), then the broker.

Environment: CRM_PORT_BASE moves the five service ports together (gateway on the base, the others on
base+1..base+4, the scoring, complaints and notifications workers' /healthz, /readyz and /metrics on base+7..base+9);
CRM_VAR_DIR (default var/) holds the SQLite databases, logs and supervisord's files;
PROFILE_DATABASE_URL, SCORING_DATABASE_URL... (a service's own prefix) put that service on another database,
e.g. PostgreSQL; CRM_DEMO=0 never adds demo data (by default it goes only into an installation without customers;
`make demo` adds it on purpose).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("CRM_VAR_DIR") or ROOT / "var").resolve()
STATE_FILE = "devrun.json"  # URLs, broker and supervisord socket of the running installation (make demo, tests)
GROUP = "crm"  # supervisord's group of the services and workers; the broker is a program of its own
sys.path.insert(0, str(ROOT / "scripts"))


@dataclass(frozen=True)
class Service:
    name: str
    package: str
    prefix: str
    port: int
    # settings the worker process takes over from the HTTP process (as in deploy/compose): consumers, schedulers
    worker_runs: tuple[str, ...] = field(default=())
    worker_port: int = 0  # the worker's /healthz, /readyz, /metrics

    @property
    def worker_url(self) -> str:
        return f"http://127.0.0.1:{self.worker_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def present(self) -> bool:
        return importlib.util.find_spec(self.package) is not None

    @property
    def database_url(self) -> str:
        return os.environ.get(f"{self.prefix}DATABASE_URL") or f"sqlite:///{VAR / (self.name + '.db')}"


PORT_BASE = int(os.environ.get("CRM_PORT_BASE", "8000"))
# scripts/dev_sink.py: the SMTP sink and the fake SMS/push provider, after the five service ports
SMTP_SINK_PORT = PORT_BASE + 5
PROVIDER_PORT = PORT_BASE + 6
SENT_STORE = VAR / "sent.jsonl"
SERVICES = [
    Service("customer-profile", "crm_profile", "PROFILE_", PORT_BASE + 1, ("RUN_CONSUMERS",), PORT_BASE + 10),
    Service("scoring", "crm_scoring", "SCORING_", PORT_BASE + 2, ("RUN_CONSUMERS", "RUN_SCHEDULER"), PORT_BASE + 7),
    Service("complaints", "crm_complaints", "COMPLAINTS_", PORT_BASE + 3, ("RUN_CONSUMERS", "RUN_SCHEDULER"), PORT_BASE + 8),
    Service(
        "notifications",
        "crm_notifications",
        "NOTIFICATIONS_",
        PORT_BASE + 4,
        ("RUN_CONSUMERS", "RUN_DISPATCHER", "RUN_SCANS"),
        PORT_BASE + 9,
    ),
    Service("gateway", "crm_gateway", "GATEWAY_", PORT_BASE),
]


@dataclass(frozen=True)
class Program:
    """One process supervisord keeps running."""

    name: str
    command: list[str]
    environment: dict[str, str]
    priority: int

    @property
    def in_group(self) -> bool:
        return self.name not in ("broker", "sink")  # these start at once; the group waits for the broker's topics


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def service_env(service: Service, bootstrap: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_CONSUMER_HEARTBEAT_INTERVAL_MS": "1000",
        "KAFKA_DEV_BROKER": "tansu",  # crm_devbroker's adapter: the consumers' repair of Tansu's stuck groups
        "KAFKA_DEV_BROKER_JOIN_WATCHDOG_S": "20",
        f"{service.prefix}DATABASE_URL": service.database_url,
        f"{service.prefix}LOG_JSON": "false",
        "GATEWAY_PROFILE_URL": SERVICES[0].url,
        "GATEWAY_SCORING_URL": SERVICES[1].url,
        "GATEWAY_COMPLAINTS_URL": SERVICES[2].url,
        "GATEWAY_NOTIFICATIONS_URL": SERVICES[3].url,
        "GATEWAY_DEV_SENT_STORE": str(SENT_STORE),
        "COMPLAINTS_SURVEY_BASE_URL": f"{SERVICES[4].url}/survey",  # the gateway's survey page
        "PROFILE_SURVEY_BASE_URL": f"{SERVICES[4].url}/satisfaction-survey",  # the gateway's satisfaction survey page
        "NOTIFICATIONS_SURVEY_BASE_URL": f"{SERVICES[4].url}/survey",
        "NOTIFICATIONS_PUBLIC_BASE_URL": f"{SERVICES[4].url}/api/v1/notifications",  # unsubscribe links in emails
        "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "NOTIFICATIONS_SMTP_PORT": str(SMTP_SINK_PORT),
        "NOTIFICATIONS_SMS_PROVIDER_URL": f"http://127.0.0.1:{PROVIDER_PORT}",
        "NOTIFICATIONS_PUSH_PROVIDER_URL": f"http://127.0.0.1:{PROVIDER_PORT}",
    }


def programs(services: list[Service], broker_port: int) -> list[Program]:
    """The broker, each service's HTTP process and, where a service has one, its worker (consumers, schedulers)."""
    bootstrap = f"127.0.0.1:{broker_port}"
    found = [
        Program(
            "broker", [sys.executable, "-m", "crm_devbroker.broker", "--port", str(broker_port), "--log", str(VAR / "tansu.log")], {}, 10
        ),
        Program(
            "sink",
            [
                sys.executable,
                str(ROOT / "scripts" / "dev_sink.py"),
                "--store",
                str(SENT_STORE),
                "--smtp-port",
                str(SMTP_SINK_PORT),
                "--provider-port",
                str(PROVIDER_PORT),
            ],
            {},
            20,
        ),
    ]
    for service in services:
        env = service_env(service, bootstrap)
        http = [
            sys.executable,
            "-m",
            "uvicorn",
            f"{service.package}.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(service.port),
            "--timeout-graceful-shutdown",
            "10",
            "--no-proxy-headers",
        ]  # as in the image: only the gateway reads X-Forwarded-For, from GATEWAY_TRUSTED_PROXIES
        found.append(Program(service.name, http, env | {service.prefix + flag: "false" for flag in service.worker_runs}, 100))
        if service.worker_runs:
            worker_env = (
                env
                | {service.prefix + flag: "true" for flag in service.worker_runs}
                | {
                    f"{service.prefix}RUN_OUTBOX_RELAY": "false",
                    f"{service.prefix}WORKER_HTTP_HOST": "127.0.0.1",
                    f"{service.prefix}WORKER_HTTP_PORT": str(service.worker_port),
                }
            )
            found.append(Program(f"{service.name}-worker", [sys.executable, "-m", f"{service.package}.worker"], worker_env, 100))
    return found


def _ini_value(value: str) -> str:
    """A value in supervisord's `environment=` (ConfigParser interpolation: % doubled; quoted for commas)."""
    return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'


def supervisord_conf(found: list[Program]) -> str:
    socket_path = VAR / "supervisor.sock"
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={VAR / 'supervisord.log'}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        f"pidfile={VAR / 'supervisord.pid'}",
        f"childlogdir={VAR}",
        "loglevel=info",
        *([f"user={os.environ.get('USER') or 'root'}"] if os.geteuid() == 0 else []),  # root: say so, or it logs CRIT
        "",
        "[unix_http_server]",
        f"file={socket_path}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{socket_path}",
        "",
        f"[group:{GROUP}]",
        "programs=" + ",".join(p.name for p in found if p.in_group),
        "priority=100",
    ]
    for program in found:
        lines += [
            "",
            f"[program:{program.name}]",
            "command=" + " ".join(program.command),
            f"directory={ROOT}",
            f"priority={program.priority}",
            f"autostart={'false' if program.in_group else 'true'}",  # the group starts once the broker has its topics
            "autorestart=true",
            "startsecs=5",  # an exit sooner than this counts as a failed start: retried after 1 s, 2 s, 3 s...
            "startretries=30",
            "stopsignal=TERM",
            "stopwaitsecs=40",  # more than a runtime's shutdown_grace_s
            "stopasgroup=true",
            "killasgroup=true",
            f"stdout_logfile={VAR / (program.name + '.log')}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
            "redirect_stderr=true",
        ]
        if program.environment:
            lines.append("environment=" + ",".join(f"{key}={_ini_value(value)}" for key, value in program.environment.items()))
    return "\n".join(lines) + "\n"


def supervisor_rpc(var: Path = VAR):
    """supervisord's XML-RPC interface over its unix socket (what supervisorctl uses)."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{var / 'supervisor.sock'}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def wait_until(check, what: str, timeout_s: float, supervisord: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if supervisord.poll() is not None:
            raise SystemExit(
                f"supervisord exited (status {supervisord.returncode}) while waiting for {what}; see {VAR / 'supervisord.log'}"
            )
        try:
            if check():
                return
        except (OSError, httpx.HTTPError, xmlrpc.client.Fault):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s; see {VAR}/*.log")


def broker_has_topics(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    from crm_common.events.topics import ALL_TOPICS

    async def check() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        await admin.start()
        try:
            return set(ALL_TOPICS) <= set(await admin.list_topics())
        finally:
            await admin.close()

    # while the broker starts, each try fails to connect: aiokafka logs that as an error, which is expected here
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(check())
    except Exception:
        return False


def healthy(service: Service) -> bool:
    return httpx.get(service.url + "/healthz", timeout=1).status_code == 200


def migrate(service: Service) -> None:
    module = importlib.import_module(service.package)
    alembic_ini = getattr(module, "ALEMBIC_INI", ROOT / "services" / service.name / "alembic.ini")
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(alembic_ini), "upgrade", "head"],
        env={**os.environ, f"{service.prefix}DATABASE_URL": service.database_url},
        check=True,
        cwd=ROOT,
    )


def choose_broker_port() -> int:
    from crm_devbroker.broker import free_port

    return 9092 if PORT_BASE == 8000 and port_free(9092) else free_port()


def seed_demo_if_empty(running: list[Service], bootstrap: str) -> str:
    import demo_seed

    urls = {s.name: s.url for s in running}
    if os.environ.get("CRM_DEMO", "1") == "0":
        return "none (CRM_DEMO=0)"
    try:
        if not asyncio.run(demo_seed.installation_is_empty(urls)):
            return "none added: this installation has customers already (`make demo` adds the demo data on purpose)"
        return asyncio.run(demo_seed.seed(urls, bootstrap))["text"]
    except Exception as exc:  # the services run on without demo data: seeding is a convenience, never a reason to stop
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        return f"seeding FAILED ({type(exc).__name__}: {first_line}); the services keep running, `make demo` retries"


def announce(running: list[Service], demo: str) -> None:
    print(
        "\nThe 3PL CRM is running under supervisord (logs in var/*.log; `.venv/bin/supervisorctl -c var/supervisord.conf status`):",
        flush=True,
    )
    for service in running:
        print(f"  {service.name:<17} {service.url}/docs")
    print("\n  /healthz, /readyz and /metrics on each of those, and on the workers:")
    for service in running:
        if service.worker_port:
            print(f"  {service.name + '-worker':<24} {service.worker_url}/metrics")
    if any(s.name == "gateway" for s in running):
        print(
            f"\n  console           {SERVICES[4].url}/console   (sign in as agent, manager, customer or admin; development mode, no "
            "password)"
        )
    print(f"\n  demo data: {demo}")
    print("\nA process that exits is restarted. Ctrl-C stops everything gracefully.", flush=True)


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    running = [s for s in SERVICES if s.present]
    ports = [(s.name, s.port) for s in running] + [(s.name + " worker", s.worker_port) for s in running if s.worker_port]
    for name, port in ports + [("the SMTP sink", SMTP_SINK_PORT), ("the SMS/push provider", PROVIDER_PORT)]:
        if not port_free(port):
            raise SystemExit(f"port {port} for {name} is taken; stop what uses it and retry")
    for service in running:
        migrate(service)
    broker_port = choose_broker_port()
    bootstrap = f"127.0.0.1:{broker_port}"
    conf = VAR / "supervisord.conf"
    conf.write_text(supervisord_conf(programs(running, broker_port)))
    supervisord = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], cwd=ROOT)

    def stop_gracefully(signum, _frame) -> None:
        if supervisord.poll() is None:
            supervisord.send_signal(signal.SIGTERM)  # Ctrl-C reached supervisord too; a second request is harmless
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_gracefully)
    signal.signal(signal.SIGINT, stop_gracefully)
    try:
        wait_until(lambda: broker_has_topics(bootstrap), f"the broker on {bootstrap}", 60, supervisord)
        print(f"broker (Tansu, in memory) on {bootstrap}, topics created", flush=True)
        rpc = supervisor_rpc()
        rpc.startProcessGroup(GROUP, False)
        for service in running:
            wait_until(lambda service=service: healthy(service), service.name, 120, supervisord)
        (VAR / STATE_FILE).write_text(
            json.dumps(
                {
                    "bootstrap": bootstrap,
                    "urls": {s.name: s.url for s in running},
                    "supervisord_pid": supervisord.pid,
                    "socket": str(VAR / "supervisor.sock"),
                }
            )
        )
        announce(running, seed_demo_if_empty(running, bootstrap))
        supervisord.wait()
        print(f"supervisord exited (status {supervisord.returncode}); see {VAR / 'supervisord.log'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping: services and workers finish their batches and flush their outboxes, then the broker stops", flush=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        supervisord.wait()
        print("stopped", flush=True)
        return 0
    finally:
        if supervisord.poll() is None:
            supervisord.terminate()
            supervisord.wait()
        (VAR / STATE_FILE).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
