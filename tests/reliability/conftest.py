import pytest_asyncio

from crm_common.db import Database
from crm_devbroker.testing import migrated_database
from reliability_support import ALEMBIC_INI


@pytest_asyncio.fixture
async def profile_db_url(database_factory, db_kind):
    return await migrated_database(database_factory, db_kind, ALEMBIC_INI, "rel")


@pytest_asyncio.fixture
async def profile_db(profile_db_url):
    db = Database(profile_db_url)
    yield db
    await db.dispose()
