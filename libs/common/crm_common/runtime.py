"""What a running service owns: database, publisher, outbox relay, consumers; and its FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.bus import KafkaPublisher
from crm_common.consumer import EventHandler, InboxConsumer, dead_letters_table
from crm_common.db import Database
from crm_common.edge import EdgeAuthMiddleware, EdgeTokenVerifier
from crm_common.http import CorrelationAndMetricsMiddleware, health_router
from crm_common.limits import RequestBodyLimitMiddleware, max_request_body_bytes
from crm_common.logging import configure_logging
from crm_common.metrics import DEAD_LETTERS_WAITING
from crm_common.openapi import describe_problems, operation_id
from crm_common.outbox import RELAY_LOCK_KEY, OutboxRelay, purge_loop
from crm_common.problems import ProblemMapping, install_domain_problems, install_problem_handlers
from crm_common.production import exit_if_refused, refuse_unsafe_production
from crm_common.settings import ServiceSettings
from crm_common.tracing import instrument_app, instrument_engine, tracer_provider

if TYPE_CHECKING:
    import uvicorn

    from crm_common.audit import AuditTrail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackgroundLoop:
    """A named loop of a service (a scheduler, a dispatcher, a purge), started and stopped by the runtime, the same way in
    the API's lifespan and in the worker.

    `with_consumers`: runs only in a process that runs the consumers (work that follows what they stage).
    `stop`: asks the loop to end after its current pass; the runtime then waits for it within the graceful stop's
    grace. Without it the loop is cancelled at once (a pass that is one transaction rolls back and runs again)."""

    name: str
    run: Callable[[], Coroutine[Any, Any, object]]
    with_consumers: bool = False
    stop: Callable[[], None] | None = None


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, handlers: Sequence[EventHandler] = ()):
        self.settings = settings
        self.db = Database(
            settings.connection_url(),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pre_ping=settings.db_pool_pre_ping,
            read_pool_size=settings.db_read_pool_size,
        )
        self.publisher = KafkaPublisher(settings.kafka, client_id=settings.service_name)
        self.relay = OutboxRelay(
            self.db,
            self.publisher,
            service=settings.service_name,
            batch_size=settings.outbox_batch_size,
            poll_interval_s=settings.outbox_poll_interval_s,
            retention=settings.outbox_retention,
            broker_check_interval_s=settings.broker_check_interval_s,
        )
        self.consumers = [
            InboxConsumer(
                self.db,
                settings.kafka,
                handler,
                self.publisher,
                max_attempts=settings.consumer_max_attempts,
                batch_size=settings.consumer_batch_size,
                broker_check_interval_s=settings.broker_check_interval_s,
            )
            for handler in handlers
        ]
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop_tasks: dict[asyncio.Task[object], BackgroundLoop] = {}
        self.background_loops: dict[str, BackgroundLoop] = {}
        self._startup_hooks: list[Callable[[], Awaitable[object]]] = []
        self._shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        self._gauges: list[Callable[[], Awaitable[object]]] = []
        self.audit: AuditTrail | None = None  # the read records' trail, when crm_common.audit.attach_audit_trail gave it one
        self._consumers_running = False
        if settings.run_outbox_relay:
            self.add_background_loop(
                "outbox-purge", lambda: purge_loop(self.db, settings.outbox_retention, settings.outbox_purge_interval_s)
            )
            self.add_gauge_refresher(self.relay.update_backlog_metric)
        if settings.run_consumers and self.consumers:
            self.add_gauge_refresher(self._count_waiting_dead_letters)
        self.add_background_loop("metrics", self._refresh_gauges)

    def add_background_loop(
        self,
        name: str,
        run: Callable[[], Coroutine[Any, Any, object]],
        *,
        with_consumers: bool = False,
        stop: Callable[[], None] | None = None,
    ) -> None:
        """The one way a service starts a task of its own: `start` runs it after the relay and consumers, `stop` ends it
        (see `BackgroundLoop`). Names are unique within a runtime; `start(skip_loops=...)` leaves named ones out."""
        if name in self.background_loops:
            raise ValueError(f"background loop {name!r} is already registered")
        self.background_loops[name] = BackgroundLoop(name, run, with_consumers=with_consumers, stop=stop)

    def add_startup_hook(self, prepare: Callable[[], Awaitable[object]]) -> None:
        """Called by `start` before anything runs (seeding defaults); an exception stops the start."""
        self._startup_hooks.append(prepare)

    def add_gauge_refresher(self, refresh: Callable[[], Awaitable[object]]) -> None:
        """A gauge read from the database (a queue's length, its oldest entry's age): refreshed every
        `metrics_refresh_s` by the process that runs the work it measures, so /metrics stays a cheap read."""
        self._gauges.append(refresh)

    async def _refresh_gauges(self) -> None:
        while True:
            for refresh in self._gauges:
                try:
                    await refresh()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # database away: readiness says so; the gauges keep their last values
                    log.debug("metrics refresh %r failed: %s", refresh, exc)
            await asyncio.sleep(self.settings.metrics_refresh_s)

    async def _count_waiting_dead_letters(self) -> None:
        async with self.db.sessions() as session:
            waiting = await session.scalar(select(func.count()).where(dead_letters_table.c.replayed_at.is_(None)))
        DEAD_LETTERS_WAITING.labels(self.settings.service_name).set(waiting or 0)

    def add_shutdown_hook(self, close: Callable[[], Awaitable[None]]) -> None:
        """Called on stop, after the background tasks ended and before the database is closed."""
        self._shutdown_hooks.append(close)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The unit of work: business rows and outbox rows commit together, then the relay is woken."""
        async with self.db.transaction() as session:
            yield session
        self.relay.wake()

    async def start(self, *, relay: bool | None = None, consumers: bool | None = None, skip_loops: Collection[str] = ()) -> None:
        """Relay and consumers as the settings say (or as asked), then every background loop but `skip_loops`."""
        log.info("%s: database %s", self.settings.service_name, self.settings.shown_database_url())
        for prepare in self._startup_hooks:
            await prepare()
        if self.settings.run_outbox_relay if relay is None else relay:
            self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.settings.service_name}-relay"))
        run_consumers = self.settings.run_consumers if consumers is None else consumers
        if run_consumers:
            self._consumers_running = bool(self.consumers)
            for consumer in self.consumers:
                self._tasks.append(asyncio.create_task(consumer.run(), name=f"consumer-{consumer.handler.name}"))
        for loop in self.background_loops.values():
            if loop.name in skip_loops or (loop.with_consumers and not run_consumers):
                continue
            task = asyncio.create_task(loop.run(), name=f"{self.settings.service_name}-{loop.name}")
            self._loop_tasks[task] = loop
            self._tasks.append(task)

    async def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop (SIGTERM/SIGINT): each consumer finishes and commits the batch in hand, the relay publishes
        what is still pending, then everything closes. Whatever outlasts `grace_s` (shutdown_grace_s) is cancelled:
        an uncommitted batch is read again on the next start and unpublished rows wait in the outbox, so nothing is lost."""
        grace_s = self.settings.shutdown_grace_s if grace_s is None else grace_s
        deadline = asyncio.get_running_loop().time() + grace_s
        relay_ran = any(t.get_name().endswith("-relay") for t in self._tasks)
        self.relay.stop()
        for consumer in self.consumers:
            consumer.stop()
        for task, loop in self._loop_tasks.items():
            if loop.stop is not None:
                loop.stop()  # ends after its pass, awaited below within the grace
            else:
                task.cancel()  # a pass that is one transaction: cancelled, it rolls back and runs again next start
        for consumer in self.consumers:
            if not consumer.started.is_set():  # still joining its group: it holds no batch, nothing to finish
                for task in self._tasks:
                    if task.get_name() == f"consumer-{consumer.handler.name}":
                        task.cancel()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=grace_s)
            for task in late:
                log.warning("%s still running after %.0fs of graceful stop: cancelled", task.get_name(), grace_s)
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._loop_tasks.clear()
        self._consumers_running = False
        if relay_ran:
            await self._flush_outbox(max(1.0, deadline - asyncio.get_running_loop().time()))
        for close in self._shutdown_hooks:
            try:
                await close()
            except Exception:
                log.warning("shutdown hook %r failed", close, exc_info=True)
        await self.publisher.stop()
        await self.db.dispose()

    async def _flush_outbox(self, timeout_s: float) -> None:
        """Publish the rows committed since the relay's last pass (the consumers' last batches staged some).
        On PostgreSQL only while holding the relay's lock: a replica that is the leader publishes them anyway."""
        try:
            if self.db.dialect != "postgresql":
                await asyncio.wait_for(self.relay.drain(timeout_s), timeout_s)
                return
            async with self.db.engine.connect() as lock_connection:
                if not await lock_connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK_KEY}):
                    return
                try:
                    await asyncio.wait_for(self.relay.drain(timeout_s), timeout_s)
                finally:
                    await lock_connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RELAY_LOCK_KEY})
        except Exception as exc:  # broker or database away: the rows stay pending and go on the next start
            log.warning("outbox not flushed on stop (%s); pending rows are published on the next start", exc)

    async def readiness(self) -> dict[str, str]:
        """Database down: not ready. Broker down: degraded, still ready, because writes go to the outbox."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.db.ping(), 2.0)
            checks["database"] = "ok"
        except Exception:
            checks["database"] = "unavailable"
        checks["broker"] = "ok" if await self.publisher.ready(2.0) else "degraded"
        if self._consumers_running:
            checks["consumers"] = self._consumers_state()
        return checks

    def _consumers_state(self) -> str:
        """failed: a consumer's loop ended (it restarts itself on errors, so only a bug ends it): not ready.
        degraded: one is still joining its group (start, rebalance, broker away). ok: every one holds its group."""
        tasks = {t.get_name(): t for t in self._tasks}
        if any(tasks.get(f"consumer-{c.handler.name}") is None or tasks[f"consumer-{c.handler.name}"].done() for c in self.consumers):
            return "failed"
        return "ok" if all(c.joined for c in self.consumers) else "degraded"


def configure_tracing(runtime: ServiceRuntime) -> None:
    """Traces for the runtime's SQL, relay and consumers when the `OTEL_*` variables ask for them (crm_common.tracing).
    Once per runtime, where its process is set up: the app factory and the worker."""
    if getattr(runtime, "_tracing_configured", False):
        return
    runtime._tracing_configured = True  # type: ignore[attr-defined]
    service = runtime.settings.service_name
    if tracer_provider(service) is None:
        return
    instrument_engine(runtime.db.engine, service)
    runtime.relay.traced = True
    for consumer in runtime.consumers:
        consumer.processor.traced_as = service


def configure_process(settings: ServiceSettings) -> None:
    """What a service process sets up once: logging and the collector's thresholds."""
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    gc.set_threshold(*settings.gc_thresholds)


def runtime_of(request: Request) -> ServiceRuntime:
    """The app's runtime, for code that holds a request but is no route (a middleware); routes take
    `crm_common.deps.RuntimeDep`."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    version: str = "0.1.0",
    routers: Iterable[APIRouter] = (),
    description: str = "",
    start_background: bool = True,
    edge_auth: bool = True,
    admin_prefix: str = "",
    problems: ProblemMapping | None = None,
) -> FastAPI:
    """`problems`: the service's one mapping from its domain exceptions to problem details.
    `edge_auth`: requests need the gateway's proof (crm_common.edge); only the gateway itself, the edge, turns it off.
    `admin_prefix`: where the shared admin endpoints (dead letters) go, e.g. the gateway's /api/v1 behind its auth.
    In production, unsafe settings raise `UnsafeProductionSettings` here, before anything starts."""
    from crm_common.dlq import dead_letters_router  # its routes take crm_common.deps, which needs this module

    settings = runtime.settings
    refuse_unsafe_production(settings, serves_api=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_process(settings)
        if start_background:
            await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, version=version, description=description, lifespan=lifespan, generate_unique_id_function=operation_id)
    configure_tracing(runtime)
    instrument_app(app, settings.service_name)
    describe_problems(app, rate_limited=not edge_auth)  # the edge (the gateway) is where rate limits answer 429
    app.state.runtime = runtime
    if edge_auth:
        app.add_middleware(EdgeAuthMiddleware, verifier=EdgeTokenVerifier(settings.edge, audience=settings.service_name))
    app.add_middleware(RequestBodyLimitMiddleware, max_bytes=max_request_body_bytes(settings))  # inside the correlation id
    app.add_middleware(CorrelationAndMetricsMiddleware, service=settings.service_name)
    install_problem_handlers(app)
    install_domain_problems(app, problems or {})
    app.include_router(health_router(runtime.readiness))
    if runtime.consumers:  # before the service's routers: a catch-all of theirs (the gateway's proxy) must not shadow it
        app.include_router(dead_letters_router(settings.service_name, admin_prefix))
    for router in routers:
        app.include_router(router)
    return app


RUNTIME_ENTRY_POINTS = "crm.runtimes"


def load_runtime(service: str) -> ServiceRuntime:
    """The named service's runtime, built from its environment settings (not started): what operator
    commands use. Each service registers a factory under the `crm.runtimes` entry points."""
    from importlib.metadata import entry_points

    factories = {entry.name: entry for entry in entry_points(group=RUNTIME_ENTRY_POINTS)}
    if service not in factories:
        raise SystemExit(f"unknown service {service!r}; installed: {', '.join(sorted(factories)) or 'none'}")
    runtime: ServiceRuntime = factories[service].load()()
    return runtime


def worker_ops_app(runtime: ServiceRuntime) -> FastAPI:
    """What a worker serves over HTTP: `/healthz`, `/readyz` (database, broker, consumers) and `/metrics`."""
    app = FastAPI(title=f"{runtime.settings.service_name} worker", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(health_router(runtime.readiness))
    return app


def worker_ops_server(runtime: ServiceRuntime) -> uvicorn.Server | None:
    """uvicorn serving `worker_ops_app` on `worker_http_host:worker_http_port` in the worker's event loop
    (None when the port is 0). uvicorn's own signal handlers stay off: the worker's stop them both."""
    import uvicorn

    settings = runtime.settings
    if not settings.worker_http_port:
        return None
    config = uvicorn.Config(
        worker_ops_app(runtime),
        host=settings.worker_http_host,
        port=settings.worker_http_port,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
    )

    class WorkerOpsServer(uvicorn.Server):
        def install_signal_handlers(self) -> None:  # uvicorn < 0.29 API; newer ones use capture_signals
            pass

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return WorkerOpsServer(config)


def run_worker(runtime: ServiceRuntime) -> None:
    """Run a service's relay and consumers without HTTP until SIGTERM/SIGINT (scale-out replicas). In production,
    unsafe settings end the process at once with one line on stderr (status 2)."""
    import signal

    exit_if_refused(lambda: refuse_unsafe_production(runtime.settings, serves_api=False))
    configure_tracing(runtime)

    async def main() -> None:
        configure_process(runtime.settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ops = worker_ops_server(runtime)
        ops_task = asyncio.create_task(ops.serve(), name="worker-ops-http") if ops else None
        await runtime.start()
        try:
            await stop.wait()
        finally:
            await runtime.stop()
            if ops is not None and ops_task is not None:
                ops.should_exit = True
                await ops_task

    with asyncio.Runner(loop_factory=worker_loop_factory()) as runner:
        runner.run(main())


def worker_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (uvicorn[standard] brings it; the APIs already run on it through
    uvicorn), else asyncio's default: the workers decode and write every event on that loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop (it is not built for Windows)
        return None
    return uvloop.new_event_loop
