from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from crm_common.runtime import ServiceRuntime
from crm_common.settings import KafkaSettings
from crm_devbroker.testing import edge_auth
from crm_profile.main import create_app
from crm_profile.settings import ProfileSettings
from profile_support import migrated_database


@dataclass
class Profile:
    client: httpx.AsyncClient
    runtime: ServiceRuntime
    url: str

    @property
    def db(self):
        return self.runtime.db


@pytest.fixture(scope="session")
def _migrated_databases() -> dict:
    return {}


@pytest_asyncio.fixture
async def profile_url(db_kind, database_factory, _migrated_databases) -> str:
    """One migrated database per kind for the whole session: tests use unique data, never an empty table."""
    if db_kind not in _migrated_databases:
        _migrated_databases[db_kind] = await migrated_database(database_factory, db_kind)
    return _migrated_databases[db_kind]


async def _profile(url: str, kafka: KafkaSettings, *, start_relay: bool):
    settings = ProfileSettings(database_url=url, kafka=kafka, run_consumers=False, outbox_poll_interval_s=0.05)
    app = create_app(settings, start_background=False)
    runtime = app.state.runtime
    if start_relay:
        await runtime.start(relay=True, consumers=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://profile", auth=edge_auth(app))
    try:
        yield Profile(client, runtime, url)
    finally:
        await client.aclose()
        await runtime.stop()


@pytest_asyncio.fixture
async def profile(profile_url):
    """The app in-process, relay off (events stay in the outbox, where tests read them)."""
    async for p in _profile(profile_url, KafkaSettings(bootstrap_servers="127.0.0.1:9"), start_relay=False):
        yield p


@pytest_asyncio.fixture
async def live_profile(db_kind, database_factory, kafka_settings):
    """A fresh database and the relay running against the real broker."""
    url = await migrated_database(database_factory, db_kind)
    async for p in _profile(url, kafka_settings, start_relay=True):
        yield p
