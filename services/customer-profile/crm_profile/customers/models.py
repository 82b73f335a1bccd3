"""The customer master: customers, their tags, contacts, addresses and the interaction log.

Phones are stored normalised (E.164) and emails lower-cased, in indexed columns, so that duplicate
detection and search compare like with like. `version` columns are SQLAlchemy version counters:
every UPDATE carries `WHERE version = <loaded>`, so a concurrent writer loses with a 412, never silently.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text, Time, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_common.db import UTCDateTime, utcnow
from crm_profile.db import Base

MERGED = "merged"  # status of a customer folded into another one (never set through the API)
TOMBSTONE = "[erased]"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))  # legal name
    short_name: Mapped[str | None] = mapped_column(String(100))
    customer_type: Mapped[str] = mapped_column(String(20), default="enterprise")
    industry: Mapped[str | None] = mapped_column(String(100))
    size_band: Mapped[str | None] = mapped_column(String(20))
    region: Mapped[str | None] = mapped_column(String(100))
    registered_address: Mapped[str | None] = mapped_column(String(500))
    tax_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="prospect")
    account_manager: Mapped[str | None] = mapped_column(String(100))
    source_channel: Mapped[str | None] = mapped_column(String(50))
    first_order_date: Mapped[dt.date | None] = mapped_column(Date)
    contract_number: Mapped[str | None] = mapped_column(String(64))
    contract_start: Mapped[dt.date | None] = mapped_column(Date)
    contract_end: Mapped[dt.date | None] = mapped_column(Date)
    service_types: Mapped[list | None] = mapped_column(JSON, default=list)
    credit_limit: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    payment_days: Mapped[int | None] = mapped_column(Integer)
    share_of_wallet: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))  # declared by the account manager, 0..1
    potential_volume: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))  # the customer's whole yearly logistics spend
    relationship_level: Mapped[str | None] = mapped_column(String(20))
    # the agreed service-level targets that differ from the tier's defaults ({measure: target}; None/empty: the defaults)
    service_level_agreement: Mapped[dict | None] = mapped_column(JSON)
    merged_into: Mapped[str | None] = mapped_column(String(36))
    merged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer", lazy="selectin", order_by=lambda: [Contact.created_at, Contact.id]
    )
    addresses: Mapped[list[Address]] = relationship(lazy="selectin", order_by=lambda: [Address.created_at, Address.id])
    tag_rows: Mapped[list[CustomerTag]] = relationship(lazy="selectin", cascade="all, delete-orphan", order_by="CustomerTag.tag")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_customers_created_id", "created_at", "id"),
        Index("ix_customers_status", "status"),
        Index("ix_customers_industry", "industry"),
        Index("ix_customers_region", "region"),
        Index("ix_customers_account_manager", "account_manager"),
        Index(
            "uq_customers_tax_id_live",
            "tax_id",
            unique=True,
            postgresql_where=text("merged_into IS NULL"),
            sqlite_where=text("merged_into IS NULL"),
        ),
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    def set_tags(self, tags: list[str]) -> None:
        wanted = list(dict.fromkeys(tags))
        keep = [row for row in self.tag_rows if row.tag in wanted]
        have = {row.tag for row in keep}
        self.tag_rows = keep + [CustomerTag(tag=t) for t in wanted if t not in have]

    @property
    def live_contacts(self) -> list[Contact]:
        return [c for c in self.contacts if c.erased_at is None]


class CustomerTag(Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)

    __table_args__ = (Index("ix_customer_tags_tag", "tag"),)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))  # E.164
    email: Mapped[str | None] = mapped_column(String(254))  # lower-cased
    preferred_channel: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(10), default="zh-CN")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    quiet_hours_start: Mapped[dt.time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[dt.time | None] = mapped_column(Time)
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    marketing_consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    marketing_consent_source: Mapped[str | None] = mapped_column(String(100))
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    customer: Mapped[Customer] = relationship(back_populates="contacts")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_contacts_phone", "phone"),
        Index("ix_contacts_email", "email"),
        Index("ix_contacts_customer_id", "customer_id"),
    )

    @property
    def erased(self) -> bool:
        return self.erased_at is not None


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(20))  # pickup / delivery / billing
    label: Mapped[str | None] = mapped_column(String(100))
    line1: Mapped[str] = mapped_column(String(300))
    line2: Mapped[str | None] = mapped_column(String(300))
    district: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    province: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2), default="CN")
    latitude: Mapped[float | None] = mapped_column()
    longitude: Mapped[float | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_addresses_customer_id", "customer_id"),)


class Interaction(Base):
    __tablename__ = "interactions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.id"))
    kind: Mapped[str] = mapped_column(String(20))  # visit / call / survey / care / credit_review / other
    channel: Mapped[str] = mapped_column(String(20))  # in_person / phone / email / wechat / sms / video / other
    author: Mapped[str] = mapped_column(String(100))  # who (an account manager)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    summary: Mapped[str] = mapped_column(Text)
    next_follow_up: Mapped[dt.date | None] = mapped_column(Date)
    outcome: Mapped[str | None] = mapped_column(String(20))
    next_step: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_interactions_customer_occurred", "customer_id", "occurred_at", "id"),
        Index("ix_interactions_customer_kind", "customer_id", "kind", "occurred_at"),
        Index("ix_interactions_contact_id", "contact_id"),
        Index("ix_interactions_next_follow_up", "next_follow_up"),
    )
