"""Pytest plugin shared by every service's tests: a real broker, fresh databases, Kafka readers.

Load with `pytest -p crm_devbroker.testing` (pytest.ini does). PostgreSQL comes from
TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres); with
REQUIRE_POSTGRES=1 an unreachable server fails the run instead of skipping its tests. Unless TEST_KAFKA_BOOTSTRAP
names another broker, the run's consumers (in this process and in the services it starts) use the Tansu adapter:
KAFKA_DEV_BROKER=tansu, with a join watchdog of 10 s (KAFKA_DEV_BROKER_JOIN_WATCHDOG_S).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition

from crm_common.bus import ensure_topics
from crm_common.events.envelope import EventEnvelope, decode_envelope
from crm_common.events.topics import ALL_TOPICS
from crm_common.settings import KafkaSettings
from crm_devbroker.broker import LocalBroker

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
OUTPUT_DIR = Path(os.environ.get("TEST_OUTPUT_DIR", "test-output"))


def pytest_configure(config) -> None:
    if not os.environ.get("TEST_KAFKA_BOOTSTRAP"):
        os.environ.setdefault("KAFKA_DEV_BROKER", "tansu")
        os.environ.setdefault("KAFKA_DEV_BROKER_JOIN_WATCHDOG_S", "10")


def postgres_admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES)


async def _postgres_reachable(url: str) -> bool:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except Exception:
        return False
    await connection.close()
    return True


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


class DatabaseFactory:
    """Makes a fresh, empty database of either kind; drops them all at the end of the session."""

    def __init__(self, tmp_dir: Path, postgres_url: str, postgres_ok: bool):
        self.tmp_dir = tmp_dir
        self.postgres_url = postgres_url
        self.postgres_ok = postgres_ok
        self.created: list[str] = []

    async def create(self, kind: str, label: str = "t") -> str:
        name = f"crm_{label}_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            return f"sqlite:///{self.tmp_dir / (name + '.db')}"
        if kind != "postgres":
            raise ValueError(kind)
        if not self.postgres_ok:
            pytest.skip("PostgreSQL not reachable (set TEST_POSTGRES_URL)")
        connection = await asyncpg.connect(self.postgres_url)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        self.created.append(name)
        return _with_database(self.postgres_url, name)

    async def drop_all(self) -> None:
        if not self.created:
            return
        connection = await asyncpg.connect(self.postgres_url)
        try:
            for name in self.created:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


@pytest.fixture(scope="session")
def local_broker() -> LocalBroker | None:
    """The broker this test session started, for pause/resume; None when an external one is used."""
    if os.environ.get("TEST_KAFKA_BOOTSTRAP"):
        yield None
        return
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    broker = LocalBroker(log_path=OUTPUT_DIR / "tansu.log").start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_broker) -> str:
    return os.environ.get("TEST_KAFKA_BOOTSTRAP") or local_broker.bootstrap


@pytest_asyncio.fixture
async def kafka_settings(kafka_bootstrap) -> KafkaSettings:
    """Settings with a topic prefix of this test's own, its topics created: tests never see each other's events."""
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        topic_partitions=3,
        consumer_session_timeout_ms=3000,
        consumer_heartbeat_interval_ms=500,
    )
    await ensure_topics(settings, ALL_TOPICS)
    return settings


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    ok = asyncio.run(_postgres_reachable(postgres_admin_url()))
    if not ok and os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.exit(f"PostgreSQL required but not reachable at {postgres_admin_url()}", returncode=3)
    return ok


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory, postgres_available) -> DatabaseFactory:
    factory = DatabaseFactory(tmp_path_factory.mktemp("sqlite"), postgres_admin_url(), postgres_available)
    yield factory
    asyncio.run(factory.drop_all())


@pytest.fixture(params=["sqlite", "postgres"])
def db_kind(request) -> str:
    return request.param


async def _partition_reader(kafka: KafkaSettings, topic: str) -> AIOKafkaConsumer:
    """A group-less consumer assigned every partition from the start: no group join, so no rebalance wait."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    physical = kafka.physical(topic)
    partitions = consumer.partitions_for_topic(physical) or set()
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(physical) or set()
    consumer.assign([TopicPartition(physical, p) for p in sorted(partitions)])
    await consumer.seek_to_beginning()
    return consumer


async def read_raw(kafka: KafkaSettings, topic: str, *, count: int, timeout_s: float = 20.0, predicate=None) -> list:
    """Raw records (value, key, headers) from the start of a logical topic, e.g. a dead-letter topic."""
    consumer = await _partition_reader(kafka, topic)
    found = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(r for r in records if predicate is None or predicate(r))
    finally:
        await consumer.stop()
    return found


async def read_events(kafka: KafkaSettings, topic: str, *, count: int, timeout_s: float = 20.0, predicate=None) -> list[EventEnvelope]:
    """Read `count` matching events from the start of a logical topic (per-partition order kept)."""
    consumer = await _partition_reader(kafka, topic)
    found: list[EventEnvelope] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    envelope = decode_envelope(record.value)
                    if predicate is None or predicate(envelope):
                        found.append(envelope)
    finally:
        await consumer.stop()
    return found


async def wait_until(condition, timeout_s: float = 20.0, interval_s: float = 0.1):
    """Poll an async condition until it returns a truthy value; fail the test on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value {value!r})")
        await asyncio.sleep(interval_s)


def edge_auth(app, *, caller: str = "test"):
    """httpx auth that does what the gateway does for a request sent straight to a service app: a valid edge token
    (crm_common.edge) for that service, signing the request's own X-Actor-* / X-Customer-Id headers."""
    from crm_common.edge import EdgeTokenAuth, EdgeTokenSigner

    settings = app.state.runtime.settings
    return EdgeTokenAuth(EdgeTokenSigner(settings.edge, issuer=caller), settings.service_name)


@asynccontextmanager
async def app_client(app, base_url: str = "http://test"):
    """An httpx client on the ASGI app with its lifespan running (relay and consumers started), as the gateway calls it."""
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500 is a response, as on a server
        async with httpx.AsyncClient(transport=transport, base_url=base_url, auth=edge_auth(app)) as client:
            yield client


async def migrated_database(database_factory: DatabaseFactory, kind: str, alembic_ini, label: str) -> str:
    """A fresh database of `kind` with a service's whole Alembic history applied."""
    from crm_common.migrations import upgrade

    url = await database_factory.create(kind, label)
    await asyncio.to_thread(upgrade, alembic_ini, url)
    return url


class TcpProxy:
    """A loopback TCP proxy for fault injection: drop every connection, or refuse new ones for a while."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port: int | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.refusing = False

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _accept(self, client_reader, client_writer) -> None:
        if self.refusing:
            client_writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers.update((client_writer, upstream_writer))
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        self._writers.difference_update((client_writer, upstream_writer))

    def drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class CollectingDeadLetters:
    """Stands in for the Kafka producer of an InboxProcessor: keeps dead letters with their headers."""

    def __init__(self):
        self.sent: list[tuple[str, str, bytes, dict]] = []

    async def send(self, topic, key, value, headers=None):
        self.sent.append((topic, key, value, dict(headers or [])))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class RefusingDeadLetters:
    """For tests where any dead letter is a failure: it raises at once, naming the topic and headers."""

    async def send(self, topic, key, value, headers=None):
        raise AssertionError(f"unexpected dead letter on {topic}: {list(headers or [])}")


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def served_on_loopback(app) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port, for clients that need a real socket; yields its URL."""
    import uvicorn

    port = free_loopback_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


# ---- production mode (crm_common.production) ------------------------------------------------------------------------


def production_settings(**overrides) -> dict:
    """Keyword arguments for any service's settings class that production accepts (TLS everywhere, no default
    secret), with `overrides` on top: a service adds its own secrets, a test one unsafe value."""
    from pydantic import SecretStr

    from crm_common.production import DeploymentSettings
    from crm_common.settings import EdgeTokenSettings

    return {
        "deployment": DeploymentSettings(environment="production"),
        "edge": EdgeTokenSettings(edge_token_key=SecretStr("edge-" + uuid.uuid4().hex * 2)),
        "database_url": "postgresql://crm:pw-" + uuid.uuid4().hex + "@db.internal:5432/crm?ssl=verify-full",
        "kafka": KafkaSettings(
            bootstrap_servers="kafka.internal:9093",
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username="crm",
            sasl_plain_password="kafka-" + uuid.uuid4().hex,
            dev_broker="",
        ),
        **overrides,
    }


def common_unsafe_production(prefix: str, *, serves_api: bool = True) -> list:
    """(setting named in the refusal, the override that makes it unsafe): what every service refuses; `prefix`: the
    service's env prefix; a worker (`serves_api=False`) holds no edge key."""
    from crm_common.production import DeploymentSettings
    from crm_common.settings import EdgeTokenSettings

    database = prefix + "DATABASE_URL"
    plain = KafkaSettings(bootstrap_servers="kafka.internal:9092", security_protocol="PLAINTEXT", dev_broker="")
    safe = production_settings()["kafka"]
    edge = [pytest.param("CRM_EDGE_TOKEN_KEY", {"edge": EdgeTokenSettings()}, id="edge-key-default")] if serves_api else []
    return edge + [
        pytest.param(database, {"database_url": "sqlite:///var/service.db"}, id="sqlite"),
        pytest.param(database, {"database_url": "postgresql://crm:pw@db.internal:5432/crm"}, id="postgres-without-tls"),
        pytest.param(database, {"database_url": "postgresql://crm:pw@db.internal:5432/crm?ssl=prefer"}, id="postgres-tls-optional"),
        pytest.param(
            database,
            {"deployment": DeploymentSettings(environment="production", allow_plaintext=True), "database_url": "sqlite:///var/service.db"},
            id="sqlite-despite-allow-plaintext",
        ),
        pytest.param("KAFKA_SECURITY_PROTOCOL", {"kafka": plain}, id="kafka-without-tls"),
        pytest.param(
            "KAFKA_SASL_PLAIN_PASSWORD",
            {"kafka": KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_plain_username="crm", dev_broker="")},
            id="kafka-password-empty",
        ),
        pytest.param("KAFKA_DEV_BROKER", {"kafka": safe.model_copy(update={"dev_broker": "tansu"})}, id="dev-broker-workarounds"),
    ]
