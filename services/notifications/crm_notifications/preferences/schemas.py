from __future__ import annotations

from pydantic import BaseModel, Field

from crm_common.inputs import Input


class CategoryChoice(Input):
    opted_in: bool | None = None
    channel: str | None = None


class PreferencesIn(Input):
    categories: dict[str, CategoryChoice] = Field(default_factory=dict, description='category (or "*" for all) -> choice')
    addresses: dict[str, str] = Field(default_factory=dict, description="channel -> address (push token, webhook URL, overrides)")


class CategoryState(BaseModel):
    category: str
    kind: str
    opted_in: bool | None
    channel: str | None
    effective: str  # "send" or the reason it is suppressed


class PreferencesOut(BaseModel):
    contact_id: str
    customer_id: str
    language: str
    timezone: str
    marketing_consent: bool
    addresses: dict[str, str]
    # give it to the customer's IT: any Standard Webhooks library verifies the webhook-signature header with it
    webhook_signing_secret: str | None = Field(default=None, description="whsec_...: verifies webhook-signature (Standard Webhooks)")
    webhook_secret: str | None = Field(
        default=None, description="the same key in hex: verifies the legacy X-CRM-Signature (kept for one version)"
    )
    every_category: CategoryChoice | None = Field(
        default=None, description='the "*" entry: the choice for every category without its own entry (None: not set)'
    )
    categories: list[CategoryState]
