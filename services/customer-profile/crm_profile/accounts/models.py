"""Tables of the account manager's workspace: what scoring last announced about each customer (a read model fed by
crm.scoring events, never scoring's tables) and the visit quotas (data)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, utcnow
from crm_profile.db import Base


class AccountScore(Base):
    """Scoring's view of one customer, as last announced (CustomerScored, CreditGradeChanged)."""

    __tablename__ = "account_scores"

    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    abc_class: Mapped[str | None] = mapped_column(String(1))
    tier: Mapped[str | None] = mapped_column(String(20))
    credit_grade: Mapped[str | None] = mapped_column(String(1))
    churn_risk: Mapped[str | None] = mapped_column(String(10))
    current_value: Mapped[float | None] = mapped_column(Float)
    potential_value: Mapped[float | None] = mapped_column(Float)
    p_alive: Mapped[float | None] = mapped_column(Float)  # 0-100, as CustomerScored carries it
    scored_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    credit_review_every_days: Mapped[int | None] = mapped_column(Integer)
    credit_review_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # a grade whose policy asks for a review now
    credit_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class VisitQuota(Base):
    """At least `visits` visits per `period` to every customer whose class (or tier) is `value`."""

    __tablename__ = "visit_quotas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    applies_to: Mapped[str] = mapped_column(String(20))  # abc_class / tier
    value: Mapped[str] = mapped_column(String(20))
    visits: Mapped[int] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(10))  # month / quarter

    __table_args__ = (UniqueConstraint("applies_to", "value", name="uq_visit_quotas_target"),)
