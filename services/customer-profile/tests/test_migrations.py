"""The Alembic history (0001 slice + 0002...) builds exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crm_common.audit import audit_metadata
from crm_common.db import Database
from crm_common.idempotency import idempotency_metadata
from crm_common.outbox import messaging_metadata
from crm_profile.db import metadata


async def test_migrated_schema_matches_the_models(profile_url):
    db = Database(profile_url)

    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return compare_metadata(context, [metadata, messaging_metadata, idempotency_metadata, audit_metadata])

    try:
        async with db.engine.connect() as connection:
            differences = await connection.run_sync(diff)
    finally:
        await db.dispose()
    assert differences == []
