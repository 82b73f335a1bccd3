"""Async SQLAlchemy helpers that behave the same on PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import DateTime, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")


def async_url(url: str) -> str:
    """Accept plain URLs (postgresql://, sqlite:///) and return the async-driver form."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.split(":///", 1)[1]
    return url


def is_sqlite(url: str) -> bool:
    return async_url(url).startswith("sqlite")


def dialect_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT of the session's dialect: PostgreSQL's and SQLite's both have ON CONFLICT DO NOTHING / DO UPDATE."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:  # pragma: no cover - exercised implicitly
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10, echo: bool = False, pre_ping: bool = True) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        pool_timeout=5,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


# ---- hot reads: Core statements run without a transaction, on PostgreSQL straight through asyncpg -------------


class RowReader(Protocol):
    """Runs read-only Core statements and gives their rows as mappings (row["column"]).

    `arrays` tells the statement builder how to pass a list: True, one array parameter (`col = ANY(:ids)`,
    PostgreSQL); False, SQLAlchemy's expanding IN (every database)."""

    arrays: bool

    async def rows(self, statement: Any, params: Mapping[str, Any] | None = None) -> Sequence[Mapping[str, Any]]: ...


class SessionReader:
    """Rows through SQLAlchemy, on a session or a connection the caller already holds (SQLite; tests)."""

    arrays = False

    def __init__(self, db: AsyncSession | AsyncConnection):
        self.db = db

    async def rows(self, statement: Any, params: Mapping[str, Any] | None = None) -> Sequence[Mapping[str, Any]]:
        # RowMapping's keys are typed as str or column objects; callers index it by column name
        return cast("Sequence[Mapping[str, Any]]", (await self.db.execute(statement, dict(params or {}))).mappings().all())


_ASYNCPG = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect classes are not annotated


@functools.lru_cache(maxsize=256)
def asyncpg_sql(statement: Any) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """A Core statement as asyncpg runs it: SQL with $n parameters, the parameter names in $n order, and the values
    fixed in the statement itself (literal() values). Compiled once per statement object: keep statements prebuilt.
    Lists are array parameters (`col == any_(bindparam(name, type_=ARRAY(...)))`): an expanding IN, or IN over a
    plain tuple of values, is rendered by SQLAlchemy only when it executes, so it is refused here."""
    compiled = statement.compile(dialect=_ASYNCPG)
    if "__[POSTCOMPILE_" in compiled.string:
        raise ValueError("an IN list rendered at execution time: pass lists as array parameters (any_) and constants as literal()")
    names = tuple(compiled.positiontup or ())
    fixed = {name: compiled.params[name] for name in names if not compiled.binds[name].required}  # a missing value: KeyError
    return compiled.string, names, fixed


class AsyncpgReader:
    """Rows straight from an asyncpg connection: no SQLAlchemy execution context, result processing or pool checkout
    (half the CPU of the call-center lookup's database path, bench/lookup_db_path.py). Parameter values are passed as they are, so
    they must need no SQLAlchemy type processing (text, numbers, lists of them as arrays, aware datetimes); results are
    asyncpg's (timestamptz as aware UTC datetimes, numeric as Decimal, json decoded by the pool's codecs)."""

    arrays = True

    def __init__(self, connection: Any):
        self.connection = connection

    async def rows(self, statement: Any, params: Mapping[str, Any] | None = None) -> Sequence[Mapping[str, Any]]:
        sql, names, fixed = asyncpg_sql(statement)
        given = params or {}
        rows: Sequence[Mapping[str, Any]] = await self.connection.fetch(
            sql, *(given[name] if name in given else fixed[name] for name in names)
        )
        return rows


async def _json_codecs(connection: Any) -> None:
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _rollback_if_in_transaction(connection: Any) -> None:
    """Released read connections never hold a transaction, prepared statements or settings of their own, so asyncpg's
    full reset (a round trip per release) is skipped; a transaction left open by an error is still rolled back."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


def _connection_lost(exc: BaseException, connection: Any = None) -> bool:
    """The database dropped the connection (restart, failover, terminated backend), as opposed to a failed statement."""
    import asyncpg

    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    if isinstance(exc, TimeoutError):  # an OSError too, but a slow database is not a dropped connection
        return False
    dropped = (
        asyncpg.PostgresConnectionError,
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.CrashShutdownError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.IdleSessionTimeoutError,
        ConnectionError,
        OSError,
    )
    if isinstance(exc, dropped):
        return True
    return connection is not None and _is_closed(connection)


def _is_closed(connection: Any) -> bool:
    import asyncpg

    try:
        return bool(connection.is_closed())
    except asyncpg.InterfaceError:  # a held connection's proxy is detached only when the connection itself closed
        return True


class Database:
    """An engine and its session factory. `transaction()` is the unit of work; `read()` runs hot read-only paths."""

    def __init__(
        self, url: str, *, pool_size: int = 10, max_overflow: int = 10, echo: bool = False, pre_ping: bool = True, read_pool_size: int = 10
    ):
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, echo=echo, pre_ping=pre_ping)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_pool_size = read_pool_size
        self._read_pool: Any = None
        self._read_pool_lock = asyncio.Lock()

    async def read(self, work: Callable[[RowReader], Awaitable[T]]) -> T:
        """Run `work(reader)`, read-only statements outside any transaction (no BEGIN/ROLLBACK round trips: each
        statement reads committed data). On PostgreSQL it runs on asyncpg connections of a small pool of their own;
        on SQLite on an autocommit SQLAlchemy connection. If the database dropped the connection it got, the work
        runs once more on a fresh one: a read can simply run again, so it does not depend on a pre-ping."""
        for attempt in (1, 2):
            lost = False
            try:
                if is_sqlite(self.url):
                    async with self.engine.connect() as connection:
                        await connection.execution_options(isolation_level="AUTOCOMMIT")
                        return await work(SessionReader(connection))
                pool = await self._reads()
                async with pool.acquire() as connection:
                    try:
                        return await work(AsyncpgReader(connection))
                    except Exception as exc:
                        lost = _connection_lost(exc, connection)
                        if lost:
                            await pool.expire_connections()  # the others are likely dead too: reconnect on next acquire
                        raise
            except Exception as exc:
                if attempt == 2 or not (lost or _connection_lost(exc)):
                    raise
        raise AssertionError("unreachable")

    async def _reads(self) -> Any:
        if self._read_pool is None:
            async with self._read_pool_lock:
                if self._read_pool is None:
                    import asyncpg

                    dsn = make_url(async_url(self.url)).set(drivername="postgresql").render_as_string(hide_password=False)
                    self._read_pool = await asyncpg.create_pool(
                        dsn,
                        min_size=1,
                        max_size=self.read_pool_size,
                        init=_json_codecs,
                        reset=_rollback_if_in_transaction,
                        timeout=5,
                        command_timeout=30,
                    )
        return self._read_pool

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            async with session.begin():
                yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        pool, self._read_pool = self._read_pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except Exception:  # a connection still in use past the wait, or already broken: close it hard
                pool.terminate()
        await self.engine.dispose()
