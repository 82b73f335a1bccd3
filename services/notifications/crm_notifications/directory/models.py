"""What this service knows about customers and contacts, kept current from crm.customers / crm.scoring."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, Index, String, true
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, utcnow
from crm_notifications.db import Base


class CustomerRecord(Base):
    __tablename__ = "nf_customers"

    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str | None] = mapped_column(String(20))
    status_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    account_manager: Mapped[str | None] = mapped_column(String(200))
    contract_end: Mapped[dt.date | None] = mapped_column(Date)
    tier: Mapped[str | None] = mapped_column(String(20))
    abc_class: Mapped[str | None] = mapped_column(String(1))
    erased: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_nf_customers_abc", "abc_class"), Index("ix_nf_customers_tier", "tier"))


class ContactRecord(Base):
    __tablename__ = "nf_contacts"

    contact_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    preferred_channel: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(10), default="zh-CN")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    quiet_hours_start: Mapped[str | None] = mapped_column(String(8))  # "HH:MM" local time
    quiet_hours_end: Mapped[str | None] = mapped_column(String(8))
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())  # false once the profile drops the contact
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ErasedAddress(Base):
    """Addresses of erased people, as salted hashes only: a late event naming one (a complaint reporter's email or
    phone, after the contact was erased) is never sent. The address itself is not kept."""

    __tablename__ = "nf_erased_addresses"

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
