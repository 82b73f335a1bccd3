from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, utcnow
from crm_notifications.db import Base


class Preference(Base):
    """A contact's choice for one category ("*" = every category): opted in/out and/or a channel."""

    __tablename__ = "nf_preferences"

    contact_id: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(50))
    opted_in: Mapped[bool | None] = mapped_column(Boolean)
    channel: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[str | None] = mapped_column(String(50))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (PrimaryKeyConstraint("contact_id", "category", name="pk_nf_preferences"),)


class ContactAddress(Base):
    """Addresses the contact gave this service directly (push token, webhook endpoint, overrides)."""

    __tablename__ = "nf_contact_addresses"

    contact_id: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(1000))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (PrimaryKeyConstraint("contact_id", "channel", name="pk_nf_contact_addresses"),)
