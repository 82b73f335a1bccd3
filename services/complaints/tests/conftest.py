import pytest
import pytest_asyncio

from complaints_support import close_env, make_env, migrated_url, reset_database


@pytest.fixture(scope="session")
def shared_databases():
    """One migrated database per kind for the whole session; tests empty it first (much cheaper than one per test)."""
    return {}


async def _shared(database_factory, shared_databases, kind):
    if kind not in shared_databases:
        shared_databases[kind] = await migrated_url(database_factory, kind, "complaints_shared")
    else:
        await reset_database(shared_databases[kind])
    return shared_databases[kind]


@pytest_asyncio.fixture
async def env(database_factory, shared_databases, db_kind):
    environment = await make_env(database_factory, db_kind, url=await _shared(database_factory, shared_databases, db_kind))
    yield environment
    await close_env(environment)


@pytest_asyncio.fixture
async def pg_env(database_factory, shared_databases):
    environment = await make_env(database_factory, "postgres", url=await _shared(database_factory, shared_databases, "postgres"))
    yield environment
    await close_env(environment)
