"""Shared plumbing of the benchmarks in bench/: databases, broker, uvicorn servers, load generation, results.

Every benchmark module has `run(args) -> dict` and a `main()` that prints its figures and the result as
JSON on the last line (what bench/run_all.py reads). A result is

    {"name": ..., "figures": {...}, "baseline": {...}, "rows": [{"figure", "value", "baseline", "ratio", "target", "met"}]}

Baselines are always measured in the same run, on the same machine: nothing here is a hard-coded figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
PYTHON = sys.executable
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"

SERVICE_FOLDERS = {
    "gateway": REPO / "services" / "gateway",
    "profile": REPO / "services" / "customer-profile",
    "scoring": REPO / "services" / "scoring",
    "complaints": REPO / "services" / "complaints",
    "notifications": REPO / "services" / "notifications",
}
APPS = {
    "gateway": "crm_gateway.main:app",
    "profile": "crm_profile.main:app",
    "scoring": "crm_scoring.main:app",
    "complaints": "crm_complaints.main:app",
    "notifications": "crm_notifications.main:app",
}
ENV_PREFIX = {
    "gateway": "GATEWAY_",
    "profile": "PROFILE_",
    "scoring": "SCORING_",
    "complaints": "COMPLAINTS_",
    "notifications": "NOTIFICATIONS_",
}


# ----------------------------------------------------------------------------- figures
def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def row(figure: str, value: float, *, baseline: float | None = None, unit: str = "", target: str = "", met: bool | None = None) -> dict:
    ratio = (value / baseline) if baseline not in (None, 0) and value is not None else None
    return {"figure": figure, "value": value, "unit": unit, "baseline": baseline, "ratio": ratio, "target": target, "met": met}


def result(name: str, rows: list[dict], **extra: Any) -> dict:
    return {"name": name, "rows": rows, **extra}


def emit(res: dict) -> None:
    """Human lines, then the JSON result as the last line (run_all.py parses it)."""
    for r in res.get("rows", []):
        ratio = f"  ratio {r['ratio']:.2f}" if r.get("ratio") is not None else ""
        base = f"  baseline {fmt(r['baseline'])}" if r.get("baseline") is not None else ""
        met = "" if r.get("met") is None else ("  MET" if r["met"] else "  NOT MET")
        target = f"  target {r['target']}" if r.get("target") else ""
        print(f"[{res['name']}] {r['figure']}: {fmt(r['value'])} {r.get('unit', '')}{base}{ratio}{target}{met}", flush=True)
    print("RESULT " + json.dumps(res, default=str), flush=True)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "n/a"
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# ----------------------------------------------------------------------------- PostgreSQL
def postgres_admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES)


async def create_database(label: str) -> tuple[str, str]:
    import asyncpg

    name = f"crm_bench_{label}_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(postgres_admin_url())
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name, postgres_admin_url().rpartition("/")[0] + "/" + name


async def drop_database(name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(postgres_admin_url())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def migrate(service: str, url: str) -> None:
    from crm_common.migrations import upgrade

    folder = SERVICE_FOLDERS[service]
    await asyncio.to_thread(upgrade, folder / "alembic.ini", url)


@asynccontextmanager
async def fresh_databases(*services: str):
    """{service: url} of fresh, migrated PostgreSQL databases; dropped afterwards. Where the server runs without
    autovacuum, an analyzer thread stands in for its ANALYZE (see StandInAnalyzer)."""
    created: list[str] = []
    urls: dict[str, str] = {}
    analyzer = None
    try:
        for service in services:
            name, url = await create_database(service)
            created.append(name)
            await migrate(service, url)
            urls[service] = url
        if not await autovacuum_on():
            analyzer = StandInAnalyzer([asyncpg_dsn(url) for url in urls.values()]).start()
        yield urls
    finally:
        if analyzer is not None:
            analyzer.stop()
        for name in created:
            try:
                await drop_database(name)
            except Exception as exc:  # pragma: no cover - cleanup only
                print(f"could not drop {name}: {exc}", file=sys.stderr)


async def autovacuum_on() -> bool:
    import asyncpg

    connection = await asyncpg.connect(postgres_admin_url())
    try:
        return (await connection.fetchval("SHOW autovacuum")) == "on"
    finally:
        await connection.close()


class StandInAnalyzer:
    """ANALYZE of the benchmark's databases every `interval_s`, in a thread of its own (the benchmarks' event loops
    block on their load generators). Production PostgreSQL runs autovacuum, whose daemon analyzes a table once a
    tenth of it has changed (checked every minute); this machine's server has it off, and tables filled from empty
    in a run were never analyzed: the planner kept estimating a handful of rows and chose plans (sequential scans,
    the wrong index) that grew with the table, so every figure at a large size fell with the size."""

    def __init__(self, dsns: list[str], interval_s: float = 15.0):
        import threading

        self.dsns = dsns
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stand-in-analyzer", daemon=True)

    def start(self) -> StandInAnalyzer:
        print(f"[perfkit] the server's autovacuum is off: ANALYZE every {self.interval_s:.0f} s stands in for it", flush=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                asyncio.run(self._analyze_all())
            except Exception as exc:  # a database dropped under us at the end of a run, a restart: try next time
                print(f"[perfkit] stand-in ANALYZE failed: {exc}", file=sys.stderr, flush=True)

    async def _analyze_all(self) -> None:
        import asyncpg

        for dsn in self.dsns:
            connection = await asyncpg.connect(dsn)
            try:
                await connection.execute("ANALYZE")
            finally:
                await connection.close()


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


# ----------------------------------------------------------------------------- broker
@contextmanager
def local_broker(log_dir: Path | None = None):
    from crm_devbroker.broker import LocalBroker

    log_path = (log_dir / "tansu.log") if log_dir else None
    broker = LocalBroker(log_path=log_path).start()
    try:
        yield broker
    finally:
        broker.stop()


async def prepare_topics(bootstrap: str, partitions: int = 6, prefix: str = "") -> Any:
    from crm_common.bus import ensure_topics
    from crm_common.events.topics import ALL_TOPICS
    from crm_common.settings import KafkaSettings

    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, topic_partitions=partitions)
    await ensure_topics(kafka, ALL_TOPICS, partitions)
    return kafka


# ----------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`uvicorn <app>` in a subprocess with uvloop + httptools, access log off, one worker."""

    def __init__(
        self,
        name: str,
        app: str,
        env: dict[str, str],
        *,
        port: int | None = None,
        log_dir: Path,
        cwd: Path = REPO,
        extra_path: list[Path] = (),
    ):
        self.name = name
        self.app = app
        self.port = port or free_port()
        self.env = dict(os.environ)
        self.env.update(env)
        if extra_path:
            self.env["PYTHONPATH"] = os.pathsep.join([str(p) for p in extra_path] + [self.env.get("PYTHONPATH", "")])
        self.log_path = log_dir / f"{name}.log"
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "uvicorn",
                self.app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
                "--workers",
                "1",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, path: str = "/healthz", timeout_s: float = 40.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextmanager
def servers(*items: Server):
    started: list[Server] = []
    try:
        for server in items:
            started.append(server.start())
        for server in items:
            server.wait_ready()
        yield items
    finally:
        for server in reversed(started):
            server.stop()


# A load run against a service's own port outlasts the default 60 s edge token: the benchmark's services accept
# (and its gateway signs) tokens of this lifetime, so one signed header serves a whole run.
BENCH_EDGE_TOKEN_TTL_S = 3600


def service_env(service: str, url: str, bootstrap: str | None, **settings: Any) -> dict[str, str]:
    """Environment of one service: its database, the broker, JSON logs at WARNING, the benchmark's edge-token lifetime."""
    prefix = ENV_PREFIX[service]
    env = {f"{prefix}DATABASE_URL": url, f"{prefix}LOG_LEVEL": "WARNING", "CRM_EDGE_TOKEN_TTL_S": str(BENCH_EDGE_TOKEN_TTL_S)}
    if bootstrap:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        env["KAFKA_DEV_BROKER"] = "tansu"  # the benchmarks' broker is local_broker(): its consumers use the Tansu adapter
    for key, value in settings.items():
        env[prefix + key.upper()] = value if isinstance(value, str) else json.dumps(value)
    return env


def log_dir_for(name: str) -> Path:
    path = RESULTS / "logs" / name
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- auth
def agent_token(role: str = "agent", subject: str = "bench-agent", **claims: Any) -> str:
    """A token signed with the gateway's development key (the benchmark gateway runs with the default keys)."""
    import datetime as dt

    from crm_gateway.auth import mint_token, signing_key_from_config

    sys.path.insert(0, str(SERVICE_FOLDERS["gateway"]))
    from crm_gateway.settings import DEV_KEY, GatewaySettings

    settings = GatewaySettings()
    return mint_token(
        signing_key_from_config(DEV_KEY),
        subject=subject,
        role=role,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=dt.timedelta(hours=2),
        **claims,
    )


def direct_headers(service_name: str, identity: dict[str, str]) -> dict[str, str]:
    """`identity` plus the edge token a direct call to the service `service_name` needs, as the gateway signs it."""
    from crm_common.edge import EdgeTokenSigner
    from crm_common.settings import EdgeTokenSettings

    signer = EdgeTokenSigner(EdgeTokenSettings(edge_token_ttl_s=BENCH_EDGE_TOKEN_TTL_S), issuer="bench")
    return {**identity, **signer.headers(service_name, identity)}


def tms_api_key() -> tuple[str, dict]:
    """A fresh API key for role tms and the gateway config entry that accepts it."""
    import dataclasses

    from crm_gateway.auth import generate_api_key

    key, record = generate_api_key("bench-tms", "tms")
    entry = {k: v for k, v in dataclasses.asdict(record).items() if v is not None}
    return key, entry


# ----------------------------------------------------------------------------- load generation
WRK_SCRIPT = """
local paths = {}
local bodies = {}
local method = os.getenv("BENCH_METHOD") or "GET"
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local bodies_file = os.getenv("BENCH_BODIES")
if bodies_file and bodies_file ~= "" then for line in io.lines(bodies_file) do bodies[#bodies + 1] = line end end
local counter = 0
local thread_offset = 0
function setup(thread) thread:set("thread_offset", math.random(1, 1000000)) end
function request()
  counter = counter + 1
  local i = (counter + thread_offset) % #paths + 1
  if #bodies > 0 then
    return wrk.format(method, paths[i], nil, bodies[(counter + thread_offset) % #bodies + 1])
  end
  return wrk.format(method, paths[i])
end
function done(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %f}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""  # noqa: E501 (a Lua script for wrk)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None and os.environ.get("BENCH_NO_WRK") != "1"


def http_load(
    base_url: str,
    paths: list[str],
    *,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    bodies: list[str] | None = None,
    connections: int = 32,
    duration_s: float = 10.0,
    threads: int = 1,
) -> dict:
    """Load from a SECOND process on loopback: wrk when installed, else bench/loadgen.py (asyncio + httpx).

    Returns {"requests", "rps", "p50_ms", "p90_ms", "p99_ms", "errors", "tool"}.
    """
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        (work / "paths.txt").write_text("\n".join(paths) + "\n")
        if bodies:
            (work / "bodies.txt").write_text("\n".join(bodies) + "\n")
        env = dict(
            os.environ, BENCH_PATHS=str(work / "paths.txt"), BENCH_METHOD=method, BENCH_BODIES=str(work / "bodies.txt") if bodies else ""
        )
        if have_wrk():
            (work / "script.lua").write_text(WRK_SCRIPT)
            command = [
                "wrk",
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{duration_s:.0f}s",
                "--timeout",
                "10s",
                "-s",
                str(work / "script.lua"),
            ]
            for name, value in (headers or {}).items():
                command += ["-H", f"{name}: {value}"]
            command.append(base_url)
            completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration_s + 60)
            line = next((out for out in completed.stdout.splitlines() if out.startswith("WRKJSON ")), None)
            if line is None:
                raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
            raw = json.loads(line[len("WRKJSON ") :])
            seconds = raw["duration_us"] / 1e6
            errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["status_errors"] + raw["timeouts"]
            return {
                "tool": "wrk",
                "requests": raw["requests"],
                "seconds": seconds,
                "rps": raw["requests"] / seconds if seconds else 0.0,
                "p50_ms": raw["p50_us"] / 1000,
                "p90_ms": raw["p90_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000,
                "max_ms": raw["max_us"] / 1000,
                "errors": errors,
                "non_2xx": raw["status_errors"],
            }
        spec = {"base_url": base_url, "headers": headers or {}, "method": method, "connections": connections, "duration_s": duration_s}
        (work / "spec.json").write_text(json.dumps(spec))
        completed = subprocess.run(
            [PYTHON, str(BENCH / "loadgen.py"), str(work / "spec.json")], env=env, capture_output=True, text=True, timeout=duration_s + 60
        )
        line = next((text for text in completed.stdout.splitlines() if text.startswith("LOADJSON ")), None)
        if line is None:
            raise RuntimeError(f"loadgen failed: {completed.stdout}\n{completed.stderr}")
        return json.loads(line[len("LOADJSON ") :]) | {"tool": "loadgen(httpx)"}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def open_loop(
    base_url: str,
    paths: list[str],
    *,
    rate: float,
    duration_s: float,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    bodies: list[str] | None = None,
    generators: int = 2,
    connections: int = 256,
) -> dict:
    """Open-loop load at a fixed `rate` (requests/s) from `generators` processes (bench/openloop.py), latency from each
    request's due time. Returns {"rate", "achieved_rps", "p50_ms", "p99_ms", "p999_ms", "max_ms", "errors", "non_2xx",
    "send_lag_p99_ms", "requests"}."""
    import array

    work = Path(tempfile.mkdtemp(prefix="bench-openloop-"))
    try:
        (work / "paths.txt").write_text("\n".join(paths) + "\n")
        if bodies:
            (work / "bodies.txt").write_text("\n".join(bodies) + "\n")
        env = dict(os.environ, BENCH_PATHS=str(work / "paths.txt"), BENCH_BODIES=str(work / "bodies.txt") if bodies else "")
        processes = []
        for index in range(generators):
            spec = {
                "base_url": base_url,
                "headers": headers or {},
                "method": method,
                "rate": rate / generators,
                "duration_s": duration_s,
                "phase_s": index / rate,
                "connections": max(1, connections // generators),
                "out": str(work / f"latencies-{index}.bin"),
            }
            (work / f"spec-{index}.json").write_text(json.dumps(spec))
            processes.append(
                subprocess.Popen(
                    [PYTHON, str(BENCH / "openloop.py"), str(work / f"spec-{index}.json")],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=duration_s + 120)
            line = next((text for text in out.splitlines() if text.startswith("OPENLOOPJSON ")), None)
            if line is None:
                raise RuntimeError(f"openloop failed: {out}\n{err}")
            reports.append(json.loads(line[len("OPENLOOPJSON ") :]))
        latencies = array.array("d")
        for index in range(generators):
            with open(work / f"latencies-{index}.bin", "rb") as stored:
                latencies.frombytes(stored.read())
        ordered = sorted(1000 * value for value in latencies)
        completed = sum(r["ok"] + r["non_2xx"] for r in reports)
        elapsed = max(r["elapsed_s"] for r in reports)
        return {
            "tool": "openloop(aiohttp)",
            "rate": rate,
            "requests": len(ordered),
            "achieved_rps": completed / elapsed if elapsed else 0.0,
            "p50_ms": percentile(ordered, 0.50),
            "p99_ms": percentile(ordered, 0.99),
            "p999_ms": percentile(ordered, 0.999),
            "max_ms": ordered[-1] if ordered else float("nan"),
            "errors": sum(r["errors"] for r in reports),
            "non_2xx": sum(r["non_2xx"] for r in reports),
            "send_lag_p99_ms": max(r["send_lag_p99_ms"] for r in reports),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


OPEN_LOOP_SHARES = (0.25, 0.50, 0.80)


def open_loop_levels(label: str, base_url: str, paths: list[str], *, max_rps: float, duration_s: float, **load: Any) -> dict[float, dict]:
    """Open-loop loads at 25%, 50% and 80% of `max_rps` (the rate a closed-loop load reached), printed as they run."""
    out = {}
    for share in OPEN_LOOP_SHARES:
        measured = out[share] = open_loop(base_url, paths, rate=max(1.0, share * max_rps), duration_s=duration_s, **load)
        print(
            f"[{label}] open loop at {share:.0%} of max ({measured['rate']:,.0f} req/s): achieved {measured['achieved_rps']:,.0f} req/s, "
            f"p50 {measured['p50_ms']:.1f} ms p99 {measured['p99_ms']:.1f} ms p99.9 {measured['p999_ms']:.1f} ms, errors "
            f"{measured['errors']}, non-2xx {measured['non_2xx']}, generator send lag p99 {measured['send_lag_p99_ms']:.1f} ms",
            flush=True,
        )
    return out


def open_loop_rows(
    label: str, levels: dict[float, dict], base_levels: dict[float, dict] | None = None, *, targets: dict[float, float] | None = None
) -> list[dict]:
    """Rows p50/p99/p99.9 per share of the maximum; `targets` maps a share to a p99 limit in ms."""
    rows = []
    for share, load in levels.items():
        base = (base_levels or {}).get(share)
        limit = (targets or {}).get(share)
        name = f"{label}, open loop {share:.0%} of max"
        rows.append(row(f"{name}, offered rate", load["rate"], baseline=base and base["rate"], unit="req/s"))
        rows.append(row(f"{name} p50", load["p50_ms"], baseline=base and base["p50_ms"], unit="ms"))
        rows.append(
            row(
                f"{name} p99",
                load["p99_ms"],
                baseline=base and base["p99_ms"],
                unit="ms",
                target=f"< {limit:g} ms" if limit else "",
                met=(load["p99_ms"] < limit and load["errors"] == 0) if limit else None,
            )
        )
        rows.append(row(f"{name} p99.9", load["p999_ms"], baseline=base and base["p999_ms"], unit="ms"))
    return rows


def base_parser(description: str):
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    return parser


# ----------------------------------------------------------------------------- TMS event stream
def tms_items(events: int, customers: int, seed: int = 11, run: str | None = None) -> list[dict]:
    """TMS events as the gateway accepts them ({event_id, type, occurred_at, payload}); per customer each
    order goes created -> shipped -> delivered -> paid; customers drawn with a skew (a few big shippers)."""
    import datetime as dt
    import itertools
    import random
    from collections import Counter

    rng = random.Random(seed)
    run = run or uuid.uuid4().hex[:6]
    ids = [f"B{run}-{i:06d}" for i in range(customers)]
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) ** 0.7 for rank in range(customers)))
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    sequence = rng.choices(ids, cum_weights=cumulative, k=events)
    # a big shipper's steps shrink so that its last event is still in the past: the gateway refuses an event stamped
    # in the future, and a long run gives the first customers thousands of events
    span_hours = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1) - base).total_seconds() / 3600
    step_scale = {customer: min(1.0, span_hours / (48 * n)) for customer, n in Counter(sequence).items()}
    open_orders: dict[str, list] = {}
    clock: dict[str, dt.datetime] = {}
    items: list[dict] = []
    counter = 0
    services = ["warehousing", "trunk", "distribution", "express", "cold_chain"]
    for customer in sequence:
        step = dt.timedelta(hours=rng.randint(1, 48) * step_scale[customer])
        now = clock[customer] = clock.get(customer, base) + step
        stamp = now.isoformat()
        pending = open_orders.setdefault(customer, [])
        if pending and rng.random() < 0.6:
            order = pending[0]
            if order[1] == "created":
                kind, payload = (
                    "OrderShipped",
                    {"order_id": order[0], "customer_id": customer, "shipped_at": stamp, "tracking_number": "T" + order[0]},
                )
                order[1] = "shipped"
            elif order[1] == "shipped":
                promised = (now + dt.timedelta(hours=rng.choice([-12, 6, 24]))).isoformat()
                kind, payload = (
                    "OrderDelivered",
                    {"order_id": order[0], "customer_id": customer, "delivered_at": stamp, "promised_at": promised},
                )
                order[1] = "delivered"
            else:
                kind, payload = (
                    "PaymentReceived",
                    {
                        "invoice_id": "INV-" + order[0],
                        "customer_id": customer,
                        "amount": order[2],
                        "due_date": (now + dt.timedelta(days=30)).date().isoformat(),
                        "paid_at": stamp,
                    },
                )
                pending.pop(0)
        else:
            counter += 1
            order_id = f"O{run}-{counter:08d}"
            amount = f"{rng.randint(200, 200_000) / 100:.2f}"
            kind, payload = (
                "OrderCreated",
                {
                    "order_id": order_id,
                    "customer_id": customer,
                    "order_date": stamp,
                    "amount": amount,
                    "cost": f"{float(amount) * 0.8:.2f}",
                    "service_type": rng.choice(services),
                    "lane": "SHA-PEK",
                },
            )
            pending.append([order_id, "created", amount])
        items.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "type": kind,
                "version": 1,
                "occurred_at": stamp,
                "payload": payload,
            }
        )
    return items


# ----------------------------------------------------------------------------- profiles
class Profiler:
    """`py-spy record` attached to a server process for the duration of a load: collapsed stacks (<out>.txt, read by
    top_frames) and an SVG flame graph (<out>.svg), two samplers side by side."""

    def __init__(self, pid: int, out: Path, seconds: float, rate: int = 100):
        self.out = out
        spy = Path(PYTHON).parent / "py-spy"
        self.commands = [
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                str(rate),
                "--nonblocking",
                "--format",
                fmt,
                "--output",
                str(path),
            ]
            for fmt, path in (("raw", out.with_suffix(".txt")), ("flamegraph", out.with_suffix(".svg")))
        ]
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Profiler:
        for command in self.commands:
            self.processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def top_frames(collapsed: Path, limit: int = 25) -> list[tuple[str, float, float]]:
    """(frame, self share, inclusive share) from py-spy's collapsed stacks."""
    from collections import Counter

    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return [(frame, own[frame] / total, inclusive[frame] / total) for frame, _ in inclusive.most_common(limit)] if total else []


def main(doc: str, add_arguments, run, argv=None) -> int:
    """The command line of every benchmark: its flags, run it, print its figures and RESULT line."""
    parser = base_parser(doc.splitlines()[0])
    add_arguments(parser)
    emit(run(parser.parse_args(argv)))
    return 0
