"""Bodies of the account manager's workspace."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from crm_common.events.bounds import free_text, identifier
from crm_common.inputs import Input

ABC_CLASSES = ("A", "B", "C", "D")
TIERS = ("key_account", "ordinary", "small", "at_risk")


class PortfolioItem(BaseModel):
    customer_id: str
    name: str
    status: str
    account_manager: str | None
    relationship_level: str | None
    key_account: bool = Field(description="Class A or flagged by hand (size band key_account); `key_account_reasons` says which.")
    key_account_reasons: list[str]
    abc_class: str | None
    tier: str | None
    credit_grade: str | None
    churn_risk: str | None
    current_value: float | None
    potential_value: float | None
    p_alive: float | None
    scored_at: dt.datetime | None
    share_of_wallet: float | None
    potential_volume: float | None
    last_contact_at: dt.datetime | None
    next_follow_up: dt.date | None
    visits_done: int | None = Field(description="Visits in the current period of the applicable quota (null: no quota applies).")
    visits_required: int | None
    visit_period: str | None


class PortfolioPage(BaseModel):
    items: list[PortfolioItem]
    next_cursor: str | None


class WorkItem(BaseModel):
    kind: Literal["follow_up", "visit", "credit_review", "win_back_call", "satisfaction_survey"]
    customer_id: str
    customer_name: str
    due: dt.date
    overdue: bool
    detail: str = Field(description="What to do, in English (rendered from detail_key and detail_params).")
    detail_key: str = Field(
        description="Stable message key of `detail` (e.g. work.visit, work.credit_review_now) for a client that writes it "
        "in the reader's language; the console's tables are msg.<key>."
    )
    detail_params: dict[str, Any] = Field(
        description="The key's parameters: codes (interaction_kind, period), numbers, dates, a quarter label, or someone's "
        "own words (text, case_detail) that a reader shows as written."
    )
    interaction_id: str | None = None
    case_id: str | None = Field(default=None, description="The win-back case of a win_back_call.")
    call_agent: str | None = Field(default=None, description="The neutral agent who makes a win_back_call (null: not assigned yet).")


class Worklist(BaseModel):
    items: list[WorkItem]


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    applies_to: Literal["abc_class", "tier"]
    value: str = Field(min_length=1, max_length=20)
    visits: int = Field(ge=1, le=100)
    period: Literal["month", "quarter"]

    @model_validator(mode="after")
    def _known_value(self):
        known = ABC_CLASSES if self.applies_to == "abc_class" else TIERS
        if self.value not in known:
            raise ValueError(f"value must be one of {', '.join(known)} for {self.applies_to}")
        return self


class QuotaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    applies_to: str
    value: str
    visits: int
    period: str


class ReasonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    label_en: str
    label_zh: str


class WinBackOfferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    summary: str
    discount_percent: int | None
    valid_until: dt.date
    made_by: str
    made_at: dt.datetime
    response: Literal["accepted", "declined"] | None = Field(description="The customer's answer (null: none yet).")
    response_note: str | None
    responded_at: dt.datetime | None


class WinBackCaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    account_manager: str | None
    cause: Literal["inactive", "terminated"]
    detail: str = Field(description="Why the case was opened, in English (rendered from detail_key and detail_params).")
    detail_key: str | None = Field(
        description="Stable message key of `detail` (winback.inactive, winback.terminated); null on cases opened before keys existed."
    )
    detail_params: dict[str, Any] | None = Field(
        description="The key's parameters: last_order (date), days, p_alive and p_alive_below (percent, as text), old_status (code)."
    )
    lost_at: dt.datetime
    status: Literal["in_progress", "won_back", "lost_for_good"]
    reasons: list[str]
    reason_text: str | None
    would_return_if: str | None
    surveyed_at: dt.datetime | None
    surveyed_by: str | None
    outcome_at: dt.datetime | None
    outcome_note: str | None
    call_agent: str | None = Field(description="The neutral agent who makes the survey call (never the customer's manager).")
    call_assigned_at: dt.datetime | None
    offers: list[WinBackOfferOut] = Field(default_factory=list, description="Offers sent from the case, oldest first.")


class WinBackOfferIn(Input):
    """An offer to win the customer back: sent by notifications to its contacts, each in their own language."""

    summary: free_text(500) = Field(min_length=1, description="The offer in your words, e.g. guaranteed capacity in November.")
    discount_percent: int | None = Field(default=None, ge=1, le=90)
    valid_until: dt.date = Field(description="The last day the offer holds (today to a year ahead, Asia/Shanghai).")


class WinBackOfferResponseIn(Input):
    response: Literal["accepted", "declined"]
    note: free_text(2000) | None = None


class CallAgentsIn(Input):
    """The pool of neutral agents who make the lost-customer survey calls (gateway users of role agent, in order)."""

    agents: list[identifier(100)] = Field(max_length=100)


class CallAgentsOut(BaseModel):
    agents: list[str]


class WinBackCasePage(BaseModel):
    items: list[WinBackCaseOut]
    next_cursor: str | None


class SurveyIn(Input):
    """The lost-customer survey call: why the customer left (codes of GET /account-manager/win-back-reasons, and in
    its own words) and what would bring it back."""

    reasons: list[identifier(40)] = Field(min_length=1, max_length=10)
    reason_text: free_text(2000) | None = None
    would_return_if: free_text(2000) | None = None


class OutcomeIn(Input):
    outcome: Literal["won_back", "lost_for_good"]
    note: free_text(2000) | None = None


class WinBackMonth(BaseModel):
    month: str
    opened: int
    won_back: int
    lost_for_good: int
    in_progress: int
    surveyed: int
    offers_sent: int
    offers_accepted: int
    win_back_rate: float | None = Field(description="won_back / opened of the customers lost that month (null: none lost).")
    reasons: dict[str, int]


class WinBackReport(BaseModel):
    since: str
    until: str
    account_manager: str | None
    months: list[WinBackMonth]


class ManagerKpis(BaseModel):
    """One account manager's KPIs for the period (definitions: docs/account-management.md)."""

    rank: int | None = Field(description="Place on the ranking key among all managers (ties share it); null without a value.")
    account_manager: str
    customers: int
    customers_at_start: int
    active_customers: int
    orders: int
    revenue: float
    revenue_previous: float
    revenue_growth: float | None
    customers_lost: int
    churn_rate: float | None
    retention_rate: float | None
    win_backs: int
    visits_done: int
    visits_required: float
    visit_attainment: float | None
    follow_ups_due: int
    follow_ups_on_time: int
    follow_up_on_time_rate: float | None
    complaints: int
    complaint_rate: float | None
    post_complaint_surveys: int
    post_complaint_satisfaction: float | None
    satisfaction_surveys: int
    satisfaction: float | None
    service_level_breaches: int
    customers_with_breaches: int


class KpiReport(BaseModel):
    period: str
    start: dt.date
    end: dt.date = Field(description="The first day after the period.")
    previous_period: str
    revenue_currency: str
    sort: str
    items: list[ManagerKpis]


# --- key-account monthly service reports (reports.py) ---------------------------------------------------


class KeyAccountReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    month: str
    account_manager: str | None
    customer_opted_in: bool = Field(description="The customer had asked for its reports when this one was generated.")
    generated_at: dt.datetime
    content: dict = Field(description="orders, service_levels, complaints, satisfaction, visits (docs/account-management.md).")


class KeyAccountReportPage(BaseModel):
    items: list[KeyAccountReportOut]
    next_cursor: str | None = None


class ReportRunIn(Input):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="A finished month YYYY-MM (Asia/Shanghai).")


class ReportRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    month: str
    reports: int = Field(description="Reports stored so far.")
    started_by: str
    started_at: dt.datetime | None
    completed_at: dt.datetime | None = Field(description="Null while the run is going on (or was killed: the next pass resumes).")
    created: bool = Field(default=False, description="False: the month had been run already; nothing was written.")


class ReportSubscriptionIn(Input):
    # strict: "yes", "no", 1 or "off" are not an answer to this question (pydantic's lax bool would read them)
    customer_opted_in: StrictBool = Field(description="The customer asked to receive its monthly service reports.")


class ReportSubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    customer_opted_in: bool
    changed_at: dt.datetime | None
    changed_by: str | None


# --- quarterly satisfaction surveys (surveys.py) -------------------------------------------------------

SurveyFactor = Literal["on_time", "damage", "price", "staff", "complaint_handling"]


class SatisfactionSurveyIn(Input):
    """The key account's answer to the quarter's survey: overall 1-5, the factors asked (1-5 each), a comment."""

    score: int = Field(ge=1, le=5)
    factors: dict[SurveyFactor, int] = Field(default_factory=dict)
    comment: free_text(2000) | None = None

    @model_validator(mode="after")
    def _factor_scores(self):
        if any(not 1 <= value <= 5 for value in self.factors.values()):
            raise ValueError("each factor's score is 1-5")
        return self


class SatisfactionSurveyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    quarter: str
    score: int
    factors: dict[str, int]
    comment: str | None
    account_manager: str | None
    recorded_by: str
    answered_at: dt.datetime


# --- satisfaction survey campaigns (campaigns.py) ------------------------------------------------------

REGION = identifier(100)


class CampaignSegment(Input):
    """Which customers' contacts are asked (every criterion given must hold; none: every live customer)."""

    abc_class: list[Literal["A", "B", "C", "D"]] = Field(default_factory=list, max_length=4)
    tier: list[Literal["key_account", "ordinary", "small", "at_risk"]] = Field(default_factory=list, max_length=4)
    region: list[REGION] = Field(default_factory=list, max_length=50)
    key_accounts_only: StrictBool = False


class CampaignIn(Input):
    name: free_text(200) = Field(min_length=1)
    segment: CampaignSegment = Field(default_factory=CampaignSegment)
    factors: list[SurveyFactor] = Field(
        default_factory=lambda: ["on_time", "damage", "price", "staff", "complaint_handling"],
        max_length=5,
        description="The seeds' factors asked besides the overall score (default all five).",
    )
    valid_days: int | None = Field(default=None, ge=1, le=365, description="How long the links hold (default PROFILE_SURVEY_VALID_DAYS).")


class CampaignOut(BaseModel):
    id: str
    name: str
    segment: dict
    factors: list[str]
    valid_days: int
    created_by: str
    created_at: dt.datetime
    invited: int = Field(description="Contacts sent a link.")
    answered: int
    average_score: float | None = Field(description="The answers' average overall score 1-5 (null: none yet).")


class SurveyLinkPage(BaseModel):
    """What the page behind the link shows: the campaign's name and factors, no customer or contact data."""

    campaign_name: str
    language: str
    factors: list[str]
    expires_at: dt.datetime
    answered: bool


class SurveyLinkAnswerIn(Input):
    token: str = Field(min_length=1, max_length=200)
    score: int = Field(ge=1, le=5, description="Overall satisfaction, 1-5.")
    factors: dict[SurveyFactor, int] = Field(default_factory=dict)
    comment: free_text(2000) | None = None

    @model_validator(mode="after")
    def _factor_scores(self):
        if any(not 1 <= value <= 5 for value in self.factors.values()):
            raise ValueError("each factor's score is 1-5")
        return self


class SurveyLinkAnsweredOut(BaseModel):
    score: int
    factors: dict[str, int]
    answered_at: dt.datetime
