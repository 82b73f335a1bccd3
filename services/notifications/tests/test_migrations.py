"""The Alembic history matches the models and runs both ways on both databases."""

import asyncio

from alembic import command
from crm_common.migrations import alembic_config
from crm_notifications import ALEMBIC_INI


def _cycle(url: str) -> None:
    config = alembic_config(ALEMBIC_INI, url)
    command.upgrade(config, "head")
    command.check(config)  # raises when the models and the history disagree
    command.downgrade(config, "base")
    command.upgrade(config, "head")


async def test_history_matches_models_and_downgrades(database_factory, db_kind):
    url = await database_factory.create(db_kind, "nfmig")
    await asyncio.to_thread(_cycle, url)
