"""Tables of the account manager's workspace: what scoring last announced about each customer and the orders seen
(read models fed by crm.scoring and logistics.orders events, never another service's tables), the visit quotas and
win-back reasons (data), and the win-back cases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, Float, Index, Integer, Numeric, String, UniqueConstraint
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


class AccountOrder(Base):
    """An order of a customer as logistics.orders announced it (OrderCreated; OrderCancelled sets `cancelled_at`)."""

    __tablename__ = "account_orders"

    order_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    order_date: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_account_orders_customer_date", "customer_id", "order_date"),)


class WinBackReason(Base):
    """One reason for leaving a lost-customer survey may record (a fixed list, as data)."""

    __tablename__ = "winback_reasons"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label_en: Mapped[str] = mapped_column(String(100))
    label_zh: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)


class WinBackCase(Base):
    """A lost customer's win-back case: opened when the customer became lost, the survey call's answers, the outcome."""

    __tablename__ = "winback_cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    account_manager: Mapped[str | None] = mapped_column(String(100))  # the customer's manager when it was lost
    cause: Mapped[str] = mapped_column(String(20))  # inactive / terminated
    detail: Mapped[str] = mapped_column(String(500))
    # the detail as a message key with parameters (accounts/messages.py); null on cases opened before keys existed
    detail_key: Mapped[str | None] = mapped_column(String(60))
    detail_params: Mapped[dict | None] = mapped_column(JSON)
    lost_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="in_progress")  # in_progress / won_back / lost_for_good
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    reason_text: Mapped[str | None] = mapped_column(String(2000))
    would_return_if: Mapped[str | None] = mapped_column(String(2000))
    surveyed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    surveyed_by: Mapped[str | None] = mapped_column(String(100))
    outcome_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome_note: Mapped[str | None] = mapped_column(String(2000))
    # the neutral agent who makes the survey call (never the customer's own manager); None: nobody neutral in the pool yet
    call_agent: Mapped[str | None] = mapped_column(String(100))
    call_assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_winback_cases_customer", "customer_id", "status"),
        Index("ix_winback_cases_manager_lost", "account_manager", "lost_at"),
        Index("ix_winback_cases_call_agent", "call_agent", "status"),
    )


class WinBackCallAgent(Base):
    """One agent of the pool that makes lost-customer survey calls (data, set by an admin; `position` breaks ties)."""

    __tablename__ = "winback_call_agents"

    agent_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class WinBackOffer(Base):
    """An offer sent to a lost customer from its case (notifications word it in each contact's language) and the answer."""

    __tablename__ = "winback_offers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36))
    summary: Mapped[str] = mapped_column(String(500))
    discount_percent: Mapped[int | None] = mapped_column(Integer)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    made_by: Mapped[str] = mapped_column(String(100))
    made_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    response: Mapped[str | None] = mapped_column(String(20))  # None: no answer yet / accepted / declined
    response_note: Mapped[str | None] = mapped_column(String(2000))
    responded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_winback_offers_case", "case_id", "made_at"),)


class AccountComplaint(Base):
    """A complaint about a customer as crm.complaints announced it (ComplaintFiled; SurveyAnswered adds the callback)."""

    __tablename__ = "account_complaints"

    complaint_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    filed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # None: a survey arrived before its filing
    survey_score: Mapped[int | None] = mapped_column(Integer)  # 1-5, the post-complaint callback
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_account_complaints_customer_filed", "customer_id", "filed_at"),)


class AccountServiceBreach(Base):
    """A customer's month whose service levels missed agreed targets (scoring's ServiceLevelBreached)."""

    __tablename__ = "account_service_breaches"

    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    missed: Mapped[int] = mapped_column(Integer)  # how many measures missed their target
    missed_targets: Mapped[list | None] = mapped_column(JSON)  # [{measure, target, actual}]; None: announced before it was kept
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class KeyAccountReport(Base):
    """A key account's monthly service report (reports.py): what the month held, frozen when it was generated."""

    __tablename__ = "key_account_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, Asia/Shanghai
    account_manager: Mapped[str | None] = mapped_column(String(100))
    customer_opted_in: Mapped[bool] = mapped_column(Boolean, default=False)  # the customer may read it
    content: Mapped[dict] = mapped_column(JSON)
    generated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("customer_id", "month", name="uq_key_account_reports_customer_month"),
        Index("ix_key_account_reports_month_manager", "month", "account_manager"),
    )


class KeyAccountReportRun(Base):
    """The monthly job's run for a month. Each chunk of reports commits with the run's cursor (the last customer id
    reported), so a month is reported once across restarts; `completed_at` is set by the last chunk."""

    __tablename__ = "key_account_report_runs"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    reports: Mapped[int] = mapped_column(Integer)
    started_by: Mapped[str] = mapped_column(String(100))  # scheduler, or the operator who asked
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the reports' generated_at
    last_customer_id: Mapped[str | None] = mapped_column(String(36))  # the cursor: reports stored up to this customer id
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # None: still running (or killed: resumed)


class KeyAccountReportSubscription(Base):
    """Whether the customer asked to receive its monthly service reports (absent: no)."""

    __tablename__ = "key_account_report_subscriptions"

    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_opted_in: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(100))


class SatisfactionSurvey(Base):
    """A key account's quarterly satisfaction survey (surveys.py): the overall score, the factors asked, a comment."""

    __tablename__ = "satisfaction_surveys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    quarter: Mapped[str] = mapped_column(String(7))  # YYYY-Qn, Asia/Shanghai, of answered_at
    score: Mapped[int] = mapped_column(Integer)  # overall, 1-5
    factors: Mapped[dict] = mapped_column(JSON, default=dict)  # factor -> 1-5 (surveys.FACTORS), those asked
    comment: Mapped[str | None] = mapped_column(String(2000))
    account_manager: Mapped[str | None] = mapped_column(String(100))  # the customer's manager when it answered
    recorded_by: Mapped[str] = mapped_column(String(100))
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("customer_id", "quarter", name="uq_satisfaction_surveys_customer_quarter"),
        Index("ix_satisfaction_surveys_answered", "answered_at"),
    )


class SurveyCampaign(Base):
    """A satisfaction survey campaign (campaigns.py): every contact of the segment's customers gets a link."""

    __tablename__ = "survey_campaigns"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    segment: Mapped[dict] = mapped_column(JSON)  # abc_class, tier, region (lists), key_accounts_only
    factors: Mapped[list] = mapped_column(JSON)  # the factors asked (surveys.FACTORS), overall always
    valid_days: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SurveyInvitation(Base):
    """One contact's link of a campaign and, once answered (single use), the answer."""

    __tablename__ = "survey_invitations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(36))
    contact_id: Mapped[str] = mapped_column(String(36))
    language: Mapped[str] = mapped_column(String(10))
    nonce: Mapped[str] = mapped_column(String(64))  # signed into the link (crm_common.links)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    score: Mapped[int | None] = mapped_column(Integer)  # overall, 1-5
    factors: Mapped[dict | None] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(String(2000))

    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", name="uq_survey_invitations_campaign_contact"),
        Index("ix_survey_invitations_answered", "answered_at"),
    )
