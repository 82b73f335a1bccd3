"""The logical notifications, the durable send queue (messages) and the attempt log."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint, literal_column, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, utcnow
from crm_notifications.db import Base

# message statuses
COLLECTING = "collecting"  # digest window open, more items may join
QUEUED = "queued"
DEFERRED = "deferred"  # quiet hours or retry backoff; next_attempt_at says when
SENDING = "sending"  # claimed by a dispatcher until lease_until
SENT = "sent"
DELIVERED = "delivered"
FAILED = "failed"
SUPPRESSED = "suppressed"
DUE_STATUSES = (COLLECTING, QUEUED, DEFERRED)
FINAL_STATUSES = (SENT, DELIVERED, FAILED, SUPPRESSED)
CAPPED_STATUSES = (SENT, DELIVERED)  # what the frequency caps count


# the order in which due messages are handled: when due, then priority, then when their event occurred, then id
DUE_ORDER = ("next_attempt_at", "priority", "occurred_at", "id")


def status_in(column, statuses: tuple[str, ...]):
    """`status IN ('a', 'b')` with the values written into the SQL, not bound: the partial indexes below are usable
    only when the planner sees the predicate at plan time (a prepared statement's generic plan has no values)."""
    return column.in_([literal_column(f"'{status}'") for status in statuses])


def _where_status(statuses: tuple[str, ...]) -> dict:
    predicate = "status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"
    return {"postgresql_where": text(predicate), "sqlite_where": text(predicate)}


class Message(Base):
    """One message to one recipient on one channel; a digest carries several notifications."""

    __tablename__ = "nf_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    contact_id: Mapped[str | None] = mapped_column(String(100))
    recipient_key: Mapped[str] = mapped_column(String(300))
    rule_id: Mapped[str | None] = mapped_column(String(36))
    rule_name: Mapped[str | None] = mapped_column(String(100))
    template_key: Mapped[str] = mapped_column(String(100))
    template_version: Mapped[int | None] = mapped_column()
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(1000))
    language: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(50))
    urgency: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(SmallInteger)  # catalog.PRIORITY of the urgency: lower goes first
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # when its event occurred (a digest: its earliest)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(500))
    # the reason as a message key with parameters (reasons.py); NULL for a provider's own text and for older rows
    reason_key: Mapped[str | None] = mapped_column(String(60))
    reason_params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    digest_group: Mapped[str | None] = mapped_column(String(500))
    item_count: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # tracing on: the trace of the event (or request) that queued it, which the dispatch and the send continue
    traceparent: Mapped[str | None] = mapped_column(String(200))

    # Partial indexes, not (status, ...): the queue and the delivery history live in one table, and right after a
    # segment send (or with statistics from before it) the planner took a status-leading index for "few rows" and
    # read every queued or every sent message per chunk. These hold only the rows their query can want.
    __table_args__ = (
        Index(
            "ix_nf_messages_waiting",
            *DUE_ORDER,  # due scan, in its order
            **_where_status(DUE_STATUSES),
        ),
        Index(
            "ix_nf_messages_leased",
            "lease_until",  # leases that ran out
            **_where_status((SENDING,)),
        ),
        Index("ix_nf_messages_customer", "customer_id", "created_at"),
        Index("ix_nf_messages_contact_sent", "contact_id", "sent_at"),
        Index("ix_nf_messages_digest_open", "digest_group", **_where_status((COLLECTING,))),  # the open digest of a group
        Index(
            "ix_nf_messages_capped_sent",
            "recipient_key",
            "sent_at",  # frequency caps: sent to this recipient lately
            **_where_status(CAPPED_STATUSES),
        ),
    )


class Notification(Base):
    """One logical notification per (event, rule, recipient): the idempotency key of the pipeline."""

    __tablename__ = "nf_notifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(100))
    rule_id: Mapped[str] = mapped_column(String(36))
    recipient_key: Mapped[str] = mapped_column(String(300))
    customer_id: Mapped[str] = mapped_column(String(100), index=True)
    contact_id: Mapped[str | None] = mapped_column(String(100), index=True)
    variables: Mapped[dict] = mapped_column(JSON, default=dict)
    message_id: Mapped[str] = mapped_column(String(36), index=True)  # no FK: inserted first, ON CONFLICT DO NOTHING
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("event_id", "rule_id", "recipient_key", name="uq_nf_notifications_triple"),)


class Attempt(Base):
    """The delivery log: every state a message went through, with the reason."""

    __tablename__ = "nf_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("nf_messages.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(100), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    detail_key: Mapped[str | None] = mapped_column(String(60))  # as Message.reason_key
    detail_params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxTask(Base):
    """The in-app inbox: tasks and alerts for account managers and escalation owners."""

    __tablename__ = "nf_inbox_tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    assignee: Mapped[str] = mapped_column(String(200), index=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
