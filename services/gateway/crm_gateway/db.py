"""The gateway's own small database: the metadata its domains' tables join (ingestion/models.py,
dashboard/models.py; the target of alembic/env.py), with the shared outbox/inbox tables."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()


def all_tables() -> MetaData:
    """The metadata with every domain's tables registered."""
    from crm_gateway.dashboard import models as _dashboard  # noqa: F401
    from crm_gateway.ingestion import models as _ingestion  # noqa: F401

    return metadata
