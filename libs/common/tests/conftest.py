import pytest_asyncio
from common_support import applied_metadata

from crm_common.db import Database
from crm_common.outbox import messaging_metadata


@pytest_asyncio.fixture
async def messaging_db(database_factory, db_kind):
    url = await database_factory.create(db_kind, "common")
    db = Database(url)
    async with db.engine.begin() as connection:
        await connection.run_sync(messaging_metadata.create_all)
        await connection.run_sync(applied_metadata.create_all)
    yield db
    await db.dispose()
