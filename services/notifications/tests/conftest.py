import asyncio
import shutil

import pytest
import pytest_asyncio

from crm_notifications.clock import ManualClock
from notifications_support import T0, FakeProvider, SmtpServer, make_runtime, migrated, settings_for


@pytest_asyncio.fixture
async def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def provider():
    fake = await FakeProvider().start()
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    """One SQLite file migrated and seeded once per session; each test gets a copy (much faster than migrating)."""
    path = tmp_path_factory.mktemp("nf-template") / "template.db"

    async def build():
        url = f"sqlite:///{path}"
        await migrated(url)
        runtime = await make_runtime(settings_for(url), ManualClock(T0))
        await runtime.db.dispose()

    asyncio.run(build())
    return str(path)


async def _fresh(database_factory, kind: str, sqlite_template: str) -> str:
    url = await database_factory.create(kind, "notif")
    if kind == "sqlite":
        shutil.copyfile(sqlite_template, url.split(":///", 1)[1])
    else:
        await migrated(url)
    return url


@pytest_asyncio.fixture
async def db_url(database_factory, db_kind, sqlite_template):
    return await _fresh(database_factory, db_kind, sqlite_template)


@pytest_asyncio.fixture
async def sqlite_url(database_factory, sqlite_template):
    return await _fresh(database_factory, "sqlite", sqlite_template)


@pytest_asyncio.fixture
async def nf(db_url, smtp, provider, clock):
    """A runtime (no background tasks) on a migrated database of either kind, seeded with the defaults."""
    runtime = await make_runtime(settings_for(db_url, smtp_port=smtp.port, provider_url=provider.url), clock)
    yield runtime
    await runtime.stop()


@pytest_asyncio.fixture
async def nf_sqlite(sqlite_url, smtp, provider, clock):
    runtime = await make_runtime(settings_for(sqlite_url, smtp_port=smtp.port, provider_url=provider.url), clock)
    yield runtime
    await runtime.stop()
