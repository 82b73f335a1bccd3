"""The alembic history builds the schema the models describe, and downgrades cleanly."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import crm_common.consumer  # noqa: F401  (registers the inbox table)
from crm_common.audit import audit_metadata
from crm_common.db import Database
from crm_common.idempotency import idempotency_metadata
from crm_common.migrations import upgrade
from crm_common.outbox import messaging_metadata
from crm_complaints import ALEMBIC_INI
from crm_complaints.db import metadata

EXPECTED = {
    "complaints",
    "complaint_references",
    "timeline_entries",
    "teams",
    "agents",
    "agent_shifts",
    "routing_rules",
    "sla_clocks",
    "idempotency_records",
    "directory_customers",
    "directory_contacts",
    "outbox",
    "inbox",
    "relay_marks",
    "dead_letters",
    "audit_log",
    "audit_head",
    "alembic_version",
}


async def test_upgrade_matches_models_and_downgrade_empties(database_factory, db_kind):
    url = await database_factory.create(db_kind, "complaints_mig")
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    db = Database(url)
    try:
        async with db.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert tables == EXPECTED
            if db_kind == "postgres":  # type comparison is exact only on PostgreSQL
                diff = await connection.run_sync(
                    lambda c: compare_metadata(
                        MigrationContext.configure(c, opts={"compare_type": True}),
                        [metadata, messaging_metadata, idempotency_metadata, audit_metadata],
                    )
                )
                assert diff == []
    finally:
        await db.dispose()

    from alembic import command
    from crm_common.migrations import alembic_config

    await asyncio.to_thread(command.downgrade, alembic_config(ALEMBIC_INI, url), "base")
    db = Database(url)
    try:
        async with db.engine.connect() as connection:
            assert await connection.run_sync(lambda c: set(inspect(c).get_table_names())) == {"alembic_version"}
    finally:
        await db.dispose()
