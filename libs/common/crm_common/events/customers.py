"""Events of the customer-profile context (topic crm.customers)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_common.events.bounds import Money
from crm_common.events.envelope import EventPayload
from crm_common.events.service_levels import ServiceLevelTargets

CustomerType = Literal["enterprise", "individual"]
CustomerStatus = Literal["prospect", "active", "dormant", "lost", "blacklisted"]
Language = Literal["zh-CN", "en"]
Channel = Literal["email", "sms", "push", "webhook", "phone"]


class ContactSnapshot(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    contact_id: str
    name: str | None = None
    role: str | None = None
    phone: str | None = None
    email: str | None = None
    preferred_channel: Channel | None = None
    language: Language = "zh-CN"
    timezone: str = "Asia/Shanghai"
    quiet_hours_start: dt.time | None = None
    quiet_hours_end: dt.time | None = None
    marketing_consent: bool = False
    marketing_consent_at: dt.datetime | None = None
    marketing_consent_source: str | None = None


class CustomerSnapshot(EventPayload):
    """The customer's current state as other services need it (no internal-only fields)."""

    customer_id: str
    name: str
    short_name: str | None = None
    customer_type: CustomerType = "enterprise"
    industry: str | None = None
    size_band: str | None = None
    region: str | None = None
    status: CustomerStatus = "prospect"
    account_manager: str | None = None
    contract_end: dt.date | None = None
    service_types: list[str] = Field(default_factory=list)
    credit_limit: float | None = None
    payment_days: int | None = None
    share_of_wallet: float | None = Field(default=None, ge=0, le=1, description="Declared share of the customer's logistics spend we get.")
    tags: list[str] = Field(default_factory=list)
    contacts: list[ContactSnapshot] = Field(default_factory=list)


class CustomerRegistered(CustomerSnapshot):
    event_type = "CustomerRegistered"
    event_version = 1


class CustomerUpdated(CustomerSnapshot):
    event_type = "CustomerUpdated"
    event_version = 1

    changed_fields: list[str] = Field(default_factory=list)


RelationshipLevel = Literal["transaction", "trust", "cooperation", "loyalty", "strategic_partner"]


class CustomerSnapshotV2(CustomerSnapshot):
    """Version 2 adds what the account manager declares about the relationship (issue 21). The same field
    names as version 1 plus new ones, so a reader of version 1 reads a version 2 payload unchanged."""

    potential_volume: Money | None = Field(
        default=None, description="The customer's whole yearly logistics spend (ours and competitors'), in the scoring currency."
    )
    relationship_level: RelationshipLevel | None = Field(
        default=None, description="交易 transaction, 信任 trust, 合作 cooperation, 忠诚 loyalty, 战略伙伴 strategic partner."
    )


class CustomerRegisteredV2(CustomerSnapshotV2, CustomerRegistered):
    event_type = "CustomerRegistered"
    event_version = 2


class CustomerUpdatedV2(CustomerSnapshotV2, CustomerUpdated):
    event_type = "CustomerUpdated"
    event_version = 2


class CustomerSnapshotV3(CustomerSnapshotV2):
    """Version 3 adds the customer's service-level agreement (issue 20): the targets agreed with this customer where
    they differ from the defaults of its tier. Version 2's fields unchanged, so older readers read it as before."""

    service_level_agreement: ServiceLevelTargets = Field(
        default_factory=dict,
        description="Per measure, the agreed target that replaces the tier's default (scoring's SCORING_SERVICE_LEVEL_TARGETS): "
        "a floor for the `_pct` shares that should be high, a ceiling for damage, loss, complaints, corrections and "
        "resolution time. Empty: the tier's defaults.",
    )


class CustomerRegisteredV3(CustomerSnapshotV3, CustomerRegistered):
    event_type = "CustomerRegistered"
    event_version = 3


class CustomerUpdatedV3(CustomerSnapshotV3, CustomerUpdated):
    event_type = "CustomerUpdated"
    event_version = 3


class CustomerMerged(EventPayload):
    """`merged_id` no longer exists; everything known about it now belongs to `survivor_id`."""

    event_type = "CustomerMerged"
    event_version = 1

    survivor_id: str
    merged_id: str
    merged_at: dt.datetime


class CustomerErased(EventPayload):
    """Forget the person: a contact (`contact_id` set) or the whole individual customer."""

    event_type = "CustomerErased"
    event_version = 1

    customer_id: str
    contact_id: str | None = None
    erased_at: dt.datetime


class CustomerLost(EventPayload):
    """The customer is lost (流失客户): the account manager's win-back case `case_id` is open. `cause` says how:
    `inactive` (no order for the configured days and P(alive) under the threshold, decided by customer-profile from
    scoring's announcement and the orders it has seen) or `terminated` (someone set the status to lost)."""

    event_type = "CustomerLost"
    event_version = 1

    customer_id: str
    case_id: str
    account_manager: str | None = None
    cause: Literal["inactive", "terminated"]
    detail: str = Field(max_length=500, description="Why, in one line (the last order and P(alive), or who set the status).")
    lost_at: dt.datetime


class WinBackOfferMade(EventPayload):
    """An offer to win back a lost customer, sent from its win-back case `case_id` by `made_by` (its account manager or
    an admin). Notifications word it to the customer's contacts, each in their own language (template win_back_offer);
    the answer is recorded on the case in customer-profile."""

    event_type = "WinBackOfferMade"
    event_version = 1

    customer_id: str
    case_id: str
    offer_id: str
    account_manager: str | None = None
    made_by: str
    summary: str = Field(max_length=500, description="The offer in the words of whoever made it.")
    discount_percent: int | None = Field(default=None, ge=1, le=90)
    valid_until: dt.date
    made_at: dt.datetime


class SatisfactionSurveyInvited(EventPayload):
    """A contact of the customer is asked to answer a satisfaction survey campaign (客户满意度调查) by a link: signed,
    expiring, single use, no sign-in (crm_common.links). Notifications send `survey_url` to that contact
    (audience event_contact) in `language`."""

    event_type = "SatisfactionSurveyInvited"
    event_version = 1

    customer_id: str
    contact_id: str
    campaign_id: str
    invitation_id: str
    campaign_name: str = Field(max_length=200)
    language: str = Field(description="The contact's language (zh-CN or en): the link's page opens in it.")
    survey_url: str = Field(max_length=2000)
    expires_at: dt.datetime


class SatisfactionSurveyAnswered(EventPayload):
    """A customer answered a satisfaction survey: the overall `score` 1-5 and the seeds' factors asked (1-5 each:
    on_time, damage, price, staff, complaint_handling). `source` says which: `campaign` (a contact by link) or
    `quarterly` (the key account's quarterly survey taken by its account manager). Scoring averages `score` into the
    customer's satisfaction with the callback surveys after complaints."""

    event_type = "SatisfactionSurveyAnswered"
    event_version = 1

    survey_id: str
    customer_id: str
    source: Literal["campaign", "quarterly"]
    campaign_id: str | None = None
    score: int = Field(ge=1, le=5)
    factors: dict[str, int] = Field(default_factory=dict)
    answered_at: dt.datetime


class KeyAccountReportReady(EventPayload):
    """A key account's monthly service report (重点客户服务报告) is stored: `month` (YYYY-MM, Asia/Shanghai) is the
    month it covers. Its account manager reads it; the customer too when `customer_opted_in` (the customer asked for
    the reports). customer-profile emits it once per customer and month, in the transaction that stores the report."""

    event_type = "KeyAccountReportReady"
    event_version = 1

    report_id: str
    customer_id: str
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    account_manager: str | None = None
    customer_opted_in: bool = False
    key_account_reasons: list[str] = Field(description="Why the customer is a key account: class A, flagged by hand.")
    summary: str = Field(max_length=500, description="The month in one line (orders, revenue, breaches, complaints), for templates.")
    generated_at: dt.datetime
