from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, utcnow
from crm_notifications.db import Base


class Rule(Base):
    """A trigger as data: event type + conditions -> template + audience + channel + category + urgency (+ digest)."""

    __tablename__ = "nf_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    event_type: Mapped[str] = mapped_column(String(100), index=True)
    conditions: Mapped[list] = mapped_column(JSON, default=list)
    template_key: Mapped[str] = mapped_column(String(100))
    audience: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(50))
    urgency: Mapped[str] = mapped_column(String(20), default="normal")
    digest_window_s: Mapped[int | None] = mapped_column()
    digest_key: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
