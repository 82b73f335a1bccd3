from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, utcnow
from crm_complaints.db import Base


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    calendar: Mapped[dict] = mapped_column(JSON)  # BusinessCalendar.to_dict()
    strategy: Mapped[str] = mapped_column(String(20), default="least_load")
    rr_cursor: Mapped[str | None] = mapped_column(String(100))
    team_lead: Mapped[str | None] = mapped_column(String(100))
    manager: Mapped[str | None] = mapped_column(String(100))


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    role: Mapped[str] = mapped_column(String(20), default="agent")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    capacity: Mapped[int | None] = mapped_column(Integer)  # most open complaints at once; None = no limit
    skills: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")  # complaint categories handled best
    languages: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")  # e.g. ["zh-CN", "en"]


class AgentShift(Base):
    __tablename__ = "agent_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)


class RoutingRuleRow(Base):
    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str | None] = mapped_column(String(50))
    region: Mapped[str | None] = mapped_column(String(100))
    service_type: Mapped[str | None] = mapped_column(String(50))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    position: Mapped[int] = mapped_column(Integer, default=100)
    name: Mapped[str | None] = mapped_column(String(100))


class DirectoryCustomer(Base):
    """The local customer directory, fed by crm.customers and crm.scoring events."""

    __tablename__ = "directory_customers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str | None] = mapped_column(String(20))
    tier: Mapped[str | None] = mapped_column(String(20))
    credit_grade: Mapped[str | None] = mapped_column(String(1))
    account_manager: Mapped[str | None] = mapped_column(String(100))
    merged_into: Mapped[str | None] = mapped_column(String(100))
    erased: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DirectoryContact(Base):
    __tablename__ = "directory_contacts"

    contact_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("directory_customers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    language: Mapped[str | None] = mapped_column(String(10))


class Complaint(Base):
    __tablename__ = "complaints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[str] = mapped_column(String(100), index=True)
    contact_id: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(50))
    priority: Mapped[str] = mapped_column(String(2))
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(30), index=True)
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id"))
    agent_id: Mapped[str | None] = mapped_column(String(100), index=True)
    region: Mapped[str | None] = mapped_column(String(100))
    service_type: Mapped[str | None] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(Text)
    # set when the service wrote the description (messages.py); null for the filer's own words
    description_key: Mapped[str | None] = mapped_column(String(60))
    description_params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    desired_outcome: Mapped[str | None] = mapped_column(Text)
    claimed_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    reporter_name: Mapped[str | None] = mapped_column(String(200))
    reporter_phone: Mapped[str | None] = mapped_column(String(32), index=True)
    reporter_email: Mapped[str | None] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(10), default="zh-CN")
    tier_at_filing: Mapped[str | None] = mapped_column(String(20))
    duplicate_of: Mapped[str | None] = mapped_column(String(36))
    merged_into: Mapped[str | None] = mapped_column(String(36))
    source_event_id: Mapped[str | None] = mapped_column(String(36))
    filed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(Text)
    compensation_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution_within_sla: Mapped[bool | None] = mapped_column(Boolean)
    first_response_within_sla: Mapped[bool | None] = mapped_column(Boolean)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    survey_token: Mapped[str | None] = mapped_column(String(64))
    survey_score: Mapped[int | None] = mapped_column(Integer)
    survey_comment: Mapped[str | None] = mapped_column(Text)
    survey_answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ComplaintReference(Base):
    """Order ids and tracking numbers of a complaint (kind = 'order' | 'tracking')."""

    __tablename__ = "complaint_references"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(100))

    __table_args__ = (
        UniqueConstraint("complaint_id", "kind", "value", name="uq_complaint_reference"),
        Index("ix_complaint_references_value", "kind", "value"),
    )


class TimelineEntry(Base):
    __tablename__ = "timeline_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(30))
    visibility: Mapped[str] = mapped_column(String(10))  # 'customer' | 'internal'
    actor_id: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    # a text of the service (messages.py): its key and parameters; NULL for someone's own words and for older rows
    message_key: Mapped[str | None] = mapped_column(String(60))
    message_params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))


class SlaClockRow(Base):
    __tablename__ = "sla_clocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    target_minutes: Mapped[int] = mapped_column(Integer)
    consumed_us: Mapped[int] = mapped_column(BigInteger, default=0)  # business time counted before running_since
    running_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_escalation_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    breached_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # finished stretches of counting (sla.Stretch data form); NULL: stored before stretches were kept
    stretches: Mapped[list | None] = mapped_column(JSON(none_as_null=True))

    __table_args__ = (UniqueConstraint("complaint_id", "kind", name="uq_sla_clock"),)
