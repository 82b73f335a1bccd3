import pytest_asyncio
from complaints_support import close_env, make_env


@pytest_asyncio.fixture
async def env(database_factory, db_kind):
    environment = await make_env(database_factory, db_kind)
    yield environment
    await close_env(environment)


@pytest_asyncio.fixture
async def pg_env(database_factory):
    environment = await make_env(database_factory, "postgres")
    yield environment
    await close_env(environment)
