"""Alembic glue: each service keeps its own history; this runs it the same way on both databases."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import async_engine_from_config
from sqlalchemy.pool import NullPool

import crm_common.consumer  # noqa: F401  (defines the inbox table on messaging_metadata; without it a fresh process migrates no inbox)
from alembic import command
from crm_common.db import async_url
from crm_common.outbox import messaging_metadata


def alembic_config(alembic_ini: Path, url: str) -> Config:
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(Path(alembic_ini).parent / "alembic"))
    config.attributes["database_url"] = url
    return config


def upgrade(alembic_ini: Path, url: str, revision: str = "head") -> None:
    """Synchronous; from async code call it with asyncio.to_thread."""
    command.upgrade(alembic_config(alembic_ini, url), revision)


def run_env(context: EnvironmentContext, target_metadata: MetaData | Sequence[MetaData], url_env: str) -> None:
    """The body of every service's alembic/env.py; `target_metadata` is the service's own, plus e.g.
    crm_common.idempotency's when the service keeps idempotency records."""
    config = context.config
    url = config.attributes.get("database_url") or os.environ.get(url_env) or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(f"no database URL: set {url_env}")
    url = async_url(url)
    own = [target_metadata] if isinstance(target_metadata, MetaData) else list(target_metadata)
    metadata = [*own, messaging_metadata]

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = async_engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())


def create_messaging_tables(op: Operations) -> None:
    """Outbox and inbox tables, created in a service's first migration."""
    bind = op.get_bind()
    messaging_metadata.create_all(bind)


def add_missing_messaging_schema(op: Operations) -> None:
    """Create the messaging tables and indexes a database lacks: a later migration's way to bring an existing
    database up to crm_common's messaging schema (a fresh one got everything from create_messaging_tables)."""
    bind = op.get_bind()
    messaging_metadata.create_all(bind)  # checkfirst: only the missing tables
    inspector = sa.inspect(bind)
    for table in messaging_metadata.sorted_tables:
        existing = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in existing:
                index.create(bind)


def drop_durable_log_schema(op: Operations) -> None:
    """Downgrade of the migration that added the durable log: dead letters, relay marks, the outbox's time index."""
    op.drop_table("dead_letters")
    op.drop_table("relay_marks")
    op.drop_index("ix_outbox_created_at", table_name="outbox")


def drop_messaging_tables(op: Operations) -> None:
    messaging_metadata.drop_all(op.get_bind())
