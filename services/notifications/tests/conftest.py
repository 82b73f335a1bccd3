import pytest_asyncio
from notifications_support import T0, FakeProvider, SmtpServer, make_runtime, migrated, settings_for

from crm_notifications.clock import ManualClock


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


@pytest_asyncio.fixture
async def db_url(database_factory, db_kind):
    url = await database_factory.create(db_kind, "notif")
    await migrated(url)
    return url


@pytest_asyncio.fixture
async def sqlite_url(database_factory):
    url = await database_factory.create("sqlite", "notif")
    await migrated(url)
    return url


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
