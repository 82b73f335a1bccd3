from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, utcnow
from crm_notifications.db import Base


class TemplateVersion(Base):
    """One immutable version of a template in one language; the highest version is the current one."""

    __tablename__ = "nf_templates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    language: Mapped[str] = mapped_column(String(10))
    version: Mapped[int] = mapped_column()
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    variables: Mapped[list] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(String(500))
    deleted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("key", "language", "version", name="uq_nf_templates_version"),)
