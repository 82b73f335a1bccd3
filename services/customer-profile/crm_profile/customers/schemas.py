"""Request and response bodies. Normalisation (phones to E.164, emails lower-case, tax ids upper-case)
happens here, so a bad value is a 422 naming its field."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from crm_common.contacts import normalize_email, normalize_phone
from crm_common.events.bounds import ContractDate, FactDate, Money
from crm_common.events.customers import RelationshipLevel
from crm_common.events.service_levels import ServiceLevelTargets
from crm_common.inputs import Input as StorableInput
from crm_profile.customers.normalize import has_control_characters, normalize_tax_id

CustomerType = Literal["enterprise", "individual"]
CustomerStatus = Literal["prospect", "active", "dormant", "lost", "blacklisted"]
ListedStatus = Literal["prospect", "active", "dormant", "lost", "blacklisted", "merged"]
SizeBand = Literal["micro", "small", "medium", "large", "key_account"]
ServiceType = Literal["warehousing", "trunk_transport", "distribution", "express", "cold_chain"]
Language = Literal["zh-CN", "en"]
PreferredChannel = Literal["email", "sms", "push", "webhook", "phone"]
AddressKind = Literal["pickup", "delivery", "billing"]
InteractionKind = Literal["visit", "call", "survey", "care", "credit_review", "other"]
InteractionOutcome = Literal["reached", "no_answer", "agreed", "declined", "needs_follow_up", "other"]
InteractionChannel = Literal["in_person", "phone", "email", "wechat", "sms", "video", "other"]


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown IANA timezone") from None
    return value


def _tag(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("empty tag")
    return value


Phone = Annotated[str, Field(max_length=40), AfterValidator(normalize_phone)]
Email = Annotated[str, Field(max_length=254), AfterValidator(normalize_email)]
TaxId = Annotated[str, Field(max_length=40), AfterValidator(normalize_tax_id)]
Timezone = Annotated[str, Field(max_length=64), AfterValidator(_timezone)]
Tag = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_tag)]


class Input(StorableInput):
    """Base of request bodies: also refuses control characters in text (StorableInput refuses NUL and lone surrogates)."""

    @field_validator("*", mode="before")
    @classmethod
    def _printable(cls, value):
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and has_control_characters(item):
                raise ValueError("control characters are not allowed")
        return value


def _not_null(model: BaseModel, fields: tuple[str, ...]) -> None:
    for name in fields:
        if name in model.model_fields_set and getattr(model, name) is None:
            raise ValueError(f"{name} cannot be null")


# --- contacts ---------------------------------------------------------------------------------


class ContactFields(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=100)
    phone: Phone | None = None
    email: Email | None = None
    preferred_channel: PreferredChannel | None = None
    language: Language | None = None
    timezone: Timezone | None = None
    quiet_hours_start: dt.time | None = None
    quiet_hours_end: dt.time | None = None
    marketing_consent: bool | None = None
    marketing_consent_at: dt.datetime | None = None
    marketing_consent_source: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _aware(self):
        if self.marketing_consent_at is not None and self.marketing_consent_at.tzinfo is None:
            raise ValueError("marketing_consent_at needs a timezone offset")
        return self


class ContactIn(ContactFields):
    """A new contact. Defaults: language zh-CN, timezone Asia/Shanghai, no marketing consent."""

    @model_validator(mode="after")
    def _reachable(self):
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            raise ValueError("quiet_hours_start and quiet_hours_end go together")
        if not (self.name or self.phone or self.email):
            raise ValueError("a contact needs at least a name, a phone or an email")
        return self


class ContactPatch(ContactFields):
    @model_validator(mode="after")
    def _nulls(self):
        _not_null(self, ("language", "timezone", "marketing_consent"))
        return self


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    name: str | None
    role: str | None
    phone: str | None
    email: str | None
    preferred_channel: str | None
    language: str
    timezone: str
    quiet_hours_start: dt.time | None
    quiet_hours_end: dt.time | None
    marketing_consent: bool
    marketing_consent_at: dt.datetime | None
    marketing_consent_source: str | None
    erased: bool
    erased_at: dt.datetime | None
    created_at: dt.datetime
    version: int


# --- addresses --------------------------------------------------------------------------------


class AddressFields(Input):
    kind: AddressKind | None = None
    label: str | None = Field(default=None, max_length=100)
    line1: str | None = Field(default=None, min_length=1, max_length=300)
    line2: str | None = Field(default=None, max_length=300)
    district: str | None = Field(default=None, max_length=100)
    city: str | None = Field(default=None, max_length=100)
    province: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _geo_pair(self):
        if isinstance(self, AddressIn) and (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        return self


class AddressIn(AddressFields):
    kind: AddressKind
    line1: str = Field(min_length=1, max_length=300)
    country: str = Field(default="CN", pattern=r"^[A-Z]{2}$")


class AddressPatch(AddressFields):
    @model_validator(mode="after")
    def _nulls(self):
        _not_null(self, ("kind", "line1", "country"))
        return self


class AddressOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    kind: str
    label: str | None
    line1: str
    line2: str | None
    district: str | None
    city: str | None
    province: str | None
    postal_code: str | None
    country: str
    latitude: float | None
    longitude: float | None
    created_at: dt.datetime
    version: int


# --- interactions -----------------------------------------------------------------------------


class InteractionIn(Input):
    kind: InteractionKind
    channel: InteractionChannel
    author: str = Field(min_length=1, max_length=100, description="Who: the account manager or agent.")
    occurred_at: dt.datetime | None = Field(default=None, description="When; defaults to now.")
    summary: str = Field(min_length=1, max_length=4000)
    next_follow_up: dt.date | None = Field(default=None, description="When to follow up; the account manager's worklist shows it when due.")
    outcome: InteractionOutcome | None = None
    next_step: str | None = Field(default=None, min_length=1, max_length=500)
    contact_id: str | None = Field(default=None, max_length=36)

    @model_validator(mode="after")
    def _aware(self):
        if self.occurred_at is not None and self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at needs a timezone offset")
        return self


class InteractionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    customer_id: str
    contact_id: str | None
    kind: str
    channel: str
    author: str
    occurred_at: dt.datetime
    summary: str
    next_follow_up: dt.date | None
    outcome: str | None
    next_step: str | None
    created_at: dt.datetime


class InteractionPage(BaseModel):
    items: list[InteractionOut]
    next_cursor: str | None


# --- customers --------------------------------------------------------------------------------


class CustomerFields(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200, description="Legal name.")
    short_name: str | None = Field(default=None, max_length=100)
    customer_type: CustomerType | None = None
    industry: str | None = Field(default=None, max_length=100)
    size_band: SizeBand | None = None
    region: str | None = Field(default=None, max_length=100)
    registered_address: str | None = Field(default=None, max_length=500)
    tax_id: TaxId | None = None
    status: CustomerStatus | None = None
    account_manager: str | None = Field(default=None, max_length=100)
    source_channel: str | None = Field(default=None, max_length=50)
    first_order_date: FactDate | None = None
    contract_number: str | None = Field(default=None, max_length=64)
    contract_start: ContractDate | None = None
    contract_end: ContractDate | None = None
    service_types: list[ServiceType] | None = Field(default=None, max_length=10)
    credit_limit: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    payment_days: int | None = Field(default=None, ge=0, le=365)
    share_of_wallet: Decimal | None = Field(
        default=None, ge=0, le=1, max_digits=5, decimal_places=4, description="Our share of the customer's logistics spend, 0 to 1."
    )
    potential_volume: Money | None = Field(default=None, description="The customer's whole yearly logistics spend, ours and competitors'.")
    relationship_level: RelationshipLevel | None = None
    tags: list[Tag] | None = Field(default=None, max_length=30)

    @model_validator(mode="after")
    def _contract_dates(self):
        if self.contract_start and self.contract_end and self.contract_end < self.contract_start:
            raise ValueError("contract_end is before contract_start")
        return self


class CustomerCreate(CustomerFields):
    """The slice's body (name, customer_type, industry, region, `contact`) or the full one (`contacts`, `addresses`...)."""

    name: str = Field(min_length=1, max_length=200, description="Legal name.")
    customer_type: CustomerType = "enterprise"
    status: CustomerStatus = "prospect"
    contact: ContactIn | None = None
    contacts: list[ContactIn] = Field(default_factory=list, max_length=50)
    addresses: list[AddressIn] = Field(default_factory=list, max_length=50)

    def all_contacts(self) -> list[ContactIn]:
        return ([self.contact] if self.contact is not None else []) + list(self.contacts)


class CustomerPatch(CustomerFields):
    @model_validator(mode="after")
    def _nulls(self):
        _not_null(self, ("name", "customer_type", "status"))
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    short_name: str | None
    customer_type: str
    industry: str | None
    size_band: str | None
    region: str | None
    registered_address: str | None
    tax_id: str | None
    status: str
    account_manager: str | None
    source_channel: str | None
    first_order_date: dt.date | None
    contract_number: str | None
    contract_start: dt.date | None
    contract_end: dt.date | None
    service_types: list[str]
    credit_limit: float | None
    payment_days: int | None
    share_of_wallet: float | None
    potential_volume: float | None
    relationship_level: str | None
    service_level_agreement: dict[str, float] = Field(
        default_factory=dict,
        description="The agreed service-level targets that replace the tier's defaults (PUT .../service-level-agreement).",
    )
    tags: list[str]
    merged_into: str | None
    merged_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    version: int
    contacts: list[ContactOut]
    addresses: list[AddressOut]

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, value):
        if not isinstance(value, dict) and getattr(value, "service_types", None) is None:
            # rows written by revision 0001 have no service types
            return {name: getattr(value, name) for name in cls.model_fields} | {"service_types": []}
        return value

    @field_validator("service_level_agreement", mode="before")
    @classmethod
    def _no_agreement(cls, value):
        return value or {}  # rows written before revision 0012, and customers without one


class ServiceLevelAgreementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: ServiceLevelTargets = Field(
        description="Per measure, the agreed target (replaces the whole agreement; a measure left out takes the tier's default, "
        "{} returns to the defaults). Floors: on_time_pickup_pct, on_time_delivery_pct, order_completion_pct, fill_rate_pct, "
        "urgent_completion_pct, documents_on_time_pct; ceilings: damage_rate_pct, loss_rate_pct, complaints_per_100_orders, "
        "billing_corrections, mean_resolution_hours. Not negative; a percentage at most 100."
    )


class ServiceLevelAgreementOut(BaseModel):
    customer_id: str
    targets: dict[str, float] = Field(description="The agreed targets that replace the tier's defaults; {}: the defaults only.")
    version: int = Field(description="The customer's version (its ETag).")
    updated_at: dt.datetime | None


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class MergeIn(Input):
    merged_id: str = Field(min_length=1, max_length=36)


class MergeOut(BaseModel):
    survivor: CustomerOut
    merged_id: str
    moved_contacts: int
    moved_addresses: int
    moved_interactions: int


class EraseOut(BaseModel):
    contact_id: str
    customer_id: str
    erased_at: dt.datetime
    scrubbed_interactions: int
