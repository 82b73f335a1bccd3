"""`make run` as its user runs it, for the fault tests: scripts/devrun.py (supervisord, the broker, every service and
worker as a process of its own) on fresh PostgreSQL databases, driven over HTTP through the gateway by e2e_support's
generator, with real faults: `kill -9` of a process, of the broker, Ctrl-C of the whole run.

What counts is business state, read from the services' databases at the end: orders (scoring's facts), complaints
(complaints' rows) and messages (notifications' acknowledgements of the complaints), each as sent, applied, lost and
applied twice; e2e_support.compare adds the oracle of the acceptance run (every consumer's inbox, the gateway's log).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from crm_common.db import Database
from crm_gateway.auth import mint_token
from e2e_support import Inputs, compare, observed, scalar_rows

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = {
    "customer-profile": "PROFILE_",
    "scoring": "SCORING_",
    "complaints": "COMPLAINTS_",
    "notifications": "NOTIFICATIONS_",
    "gateway": "GATEWAY_",
}
E2E_NAMES = {
    "profile": "customer-profile",
    "scoring": "scoring",
    "complaints": "complaints",
    "notifications": "notifications",
    "gateway": "gateway",
}  # e2e_support's names -> make run's
SERVICE_PROGRAMS = ("customer-profile", "scoring", "complaints", "notifications", "gateway")
WORKER_PROGRAMS = ("customer-profile-worker", "scoring-worker", "complaints-worker", "notifications-worker")


def broker_republishes_after_loss() -> bool:
    """Issue 17 point 2 (the outbox as the durable log): a relay that notices the broker lost what it published
    publishes the retained rows again. Without it, whatever a killed or stopped broker held is gone."""
    from crm_common.outbox import OutboxRelay

    return hasattr(OutboxRelay, "check_broker")


def free_port_base() -> int:
    """A base with base..base+4 free (the gateway and the four services)."""
    import socket

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 50000, 10)
        ok = True
        for port in range(base, base + 5):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no five free ports in a row")


class Gate(httpx.AsyncHTTPTransport):
    """Requests wait while the whole installation is down on purpose (between a Ctrl-C and the next `make run`)."""

    def __init__(self):
        super().__init__()
        self.open = asyncio.Event()
        self.open.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.open.wait()
        return await super().handle_async_request(request)


@dataclass
class SupervisedRun:
    """One installation: its var/ directory and databases survive any number of `make run`s."""

    var: Path
    database_urls: dict[str, str]  # make run's service name -> URL
    port_base: int = field(default_factory=free_port_base)
    process: subprocess.Popen | None = None
    gate: Gate | None = None
    faults: Counter = field(default_factory=Counter)
    runs: int = 0

    @classmethod
    async def create(cls, database_factory, tmp_path: Path) -> SupervisedRun:
        urls = {name: await database_factory.create("postgres", f"sv{name[:6]}") for name in PREFIXES}
        return cls(tmp_path / "var", urls)

    # ------------------------------------------------------------------ the process a user starts

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", *PREFIXES.values()))}
        env |= {"CRM_PORT_BASE": str(self.port_base), "CRM_VAR_DIR": str(self.var), "CRM_DEMO": "0", "PYTHONUNBUFFERED": "1"}
        env |= {PREFIXES[name] + "DATABASE_URL": url for name, url in self.database_urls.items()}
        return env

    async def start(self, timeout_s: float = 300) -> None:
        """`make run`: returns once it has announced the URLs (every service healthy)."""
        self.var.mkdir(parents=True, exist_ok=True)
        (self.var / "devrun.json").unlink(missing_ok=True)
        self.runs += 1
        output = open(self.var / f"make-run-{self.runs}.out", "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "devrun.py")],
            env=self.env(),
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while not (self.var / "devrun.json").exists():
            if self.process.poll() is not None:
                raise AssertionError(f"make run exited with {self.process.returncode}:\n{self.output_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"make run not up after {timeout_s:.0f} s:\n{self.output_tail()}")
            await asyncio.sleep(0.5)
        if self.gate is not None:
            self.gate.open.set()

    async def ctrl_c(self, timeout_s: float = 120) -> int:
        """What Ctrl-C in the terminal does: SIGINT to the foreground process group (devrun and supervisord)."""
        assert self.process is not None
        if self.gate is not None:
            self.gate.open.clear()
        os.killpg(self.process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"make run still running {timeout_s:.0f} s after Ctrl-C:\n{self.output_tail()}")
            await asyncio.sleep(0.2)
        self.faults["ctrl-c"] += 1
        return self.process.returncode

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                await self.ctrl_c()
            except AssertionError:
                os.killpg(self.process.pid, signal.SIGKILL)

    def output_tail(self, lines: int = 40) -> str:
        parts = []
        for path in sorted(self.var.glob("make-run-*.out")) + [self.var / "supervisord.log"]:
            if path.exists():
                parts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)

    # ------------------------------------------------------------------ supervisord

    def rpc(self):
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.var / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    @staticmethod
    def _full_name(program: str) -> str:
        return program if program == "broker" else f"crm:{program}"

    def info(self, program: str) -> dict[str, Any]:
        return self.rpc().getProcessInfo(self._full_name(program))

    async def kill_9(self, program: str, timeout_s: float = 120) -> None:
        """kill -9 of one program's process (for `broker`, of Tansu itself); returns once supervisord has it running
        again (an HTTP process also answering /healthz)."""
        before = self.info(program)["pid"]
        victim = _child_of(before) if program == "broker" else before
        os.kill(victim, signal.SIGKILL)
        self.faults[f"kill -9 {program}"] += 1
        deadline = time.monotonic() + timeout_s
        while True:
            info = self.info(program)
            if info["statename"] == "RUNNING" and info["pid"] != before and await self._answers(program):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{program} not running again {timeout_s:.0f} s after kill -9: {info}\n{self.output_tail()}")
            await asyncio.sleep(0.3)

    async def _answers(self, program: str) -> bool:
        if program not in SERVICE_PROGRAMS:
            return True
        port = self.port_base + (0 if program == "gateway" else 1 + SERVICE_PROGRAMS.index(program))
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    # ------------------------------------------------------------------ what e2e_support's generator and oracle need

    def client(self) -> httpx.AsyncClient:
        if self.gate is None:
            self.gate = Gate()
        return httpx.AsyncClient(transport=self.gate, base_url=f"http://127.0.0.1:{self.port_base}", timeout=30)

    def headers(self, role: str, subject: str | None = None, **claims: Any) -> dict[str, str]:
        from crm_gateway.settings import GatewaySettings

        settings = GatewaySettings()  # the gateway under make run has the development defaults
        token = mint_token(
            settings.signing_key(),
            subject=subject or f"{role}-faults",
            role=role,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            **claims,
        )
        return {"Authorization": f"Bearer {token}"}

    def db(self, e2e_name: str) -> Database:
        return self._dbs[e2e_name]

    async def open_databases(self) -> None:
        self._dbs = {e2e: Database(self.database_urls[name]) for e2e, name in E2E_NAMES.items()}

    async def close_databases(self) -> None:
        for db in getattr(self, "_dbs", {}).values():
            await db.dispose()


def _child_of(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert children, f"process {pid} has no child"
    return int(children[0])


# -------------------------------------------------------------------- counting in business state


@dataclass
class Tally:
    sent: int
    applied: int
    lost: int
    applied_twice: int

    def __str__(self) -> str:
        return f"sent {self.sent}, applied {self.applied}, lost {self.lost}, applied twice {self.applied_twice}"


async def tally(run: SupervisedRun, inputs: Inputs) -> dict[str, Tally]:
    """Orders in scoring's facts, complaints in complaints' rows, acknowledgement messages in notifications."""
    sent_orders = {f"O-{event_id[:13]}" for event_id in inputs.orders}
    order_rows = [r[0] for r in await scalar_rows(run.db("scoring"), "SELECT order_id FROM orders")]
    applied_order_events = [
        r[0] for r in await scalar_rows(run.db("scoring"), "SELECT event_id FROM inbox WHERE event_type = 'OrderCreated'")
    ]
    orders = Tally(
        len(sent_orders),
        len(sent_orders & set(order_rows)),
        len(sent_orders - set(order_rows)),
        # an order applied under an event id never sent (a copy with a new id), or a row of its own twice
        len(set(applied_order_events) - set(inputs.orders)) + len(order_rows) - len(set(order_rows)),
    )

    descriptions = Counter(r[0] for r in await scalar_rows(run.db("complaints"), "SELECT description FROM complaints"))
    sent_complaints = {f"e2e complaint {i}" for i in range(len(inputs.complaints))}
    complaints = Tally(
        len(sent_complaints),
        len(sent_complaints & set(descriptions)),
        len(sent_complaints - set(descriptions)),
        sum(n - 1 for n in descriptions.values() if n > 1),
    )

    acknowledged: Counter = Counter()
    for (variables,) in await scalar_rows(
        run.db("notifications"), "SELECT variables FROM nf_notifications WHERE event_type = 'ComplaintFiled'"
    ):
        values = json.loads(variables) if isinstance(variables, str) else variables
        acknowledged[values.get("complaint_id")] += 1
    complaint_ids = set(inputs.complaint_ids.values())
    messages = Tally(
        len(complaint_ids),
        len(complaint_ids & set(acknowledged)),
        len(complaint_ids - set(acknowledged)),
        sum(n - 1 for n in acknowledged.values() if n > 1),
    )
    return {"orders": orders, "complaints": complaints, "messages": messages}


async def settle(run: SupervisedRun, inputs: Inputs, timeout_s: float) -> tuple[dict[str, Tally], list[str]]:
    """Wait until nothing is lost by either count (or the time is up); return the tallies and the oracle's differences."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = await tally(run, inputs)
        problems = compare(inputs, await observed(run))
        if (not problems and not any(t.lost for t in counts.values())) or time.monotonic() > deadline:
            return counts, problems
        await asyncio.sleep(1.0)


def report(label: str, run: SupervisedRun, counts: dict[str, Tally], inputs: Inputs, elapsed_s: float) -> str:
    lines = [f"{label}: {elapsed_s:.0f} s, faults {dict(run.faults)}, {inputs.retries} client retries"]
    lines += [f"  {name}: {count}" for name, count in counts.items()]
    return "\n".join(lines)
