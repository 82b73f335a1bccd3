"""How a customer row becomes the events other services read (always built from the full record)."""

from __future__ import annotations

import datetime as dt

from crm_common.events.customers import ContactSnapshot, CustomerErased, CustomerMerged, CustomerRegisteredV3, CustomerUpdatedV3
from crm_profile.customers.models import Contact, Customer


def contact_snapshot(contact: Contact) -> ContactSnapshot:
    return ContactSnapshot(
        contact_id=contact.id,
        name=contact.name,
        role=contact.role,
        phone=contact.phone,
        email=contact.email,
        preferred_channel=contact.preferred_channel,
        language=contact.language or "zh-CN",
        timezone=contact.timezone or "Asia/Shanghai",
        quiet_hours_start=contact.quiet_hours_start,
        quiet_hours_end=contact.quiet_hours_end,
        marketing_consent=bool(contact.marketing_consent),
        marketing_consent_at=contact.marketing_consent_at,
        marketing_consent_source=contact.marketing_consent_source,
    )


def contact_snapshots(customer: Customer) -> list[ContactSnapshot]:
    """Erased contacts are left out: other services must not learn them again."""
    return [contact_snapshot(c) for c in customer.live_contacts]


def _float(value) -> float | None:
    return None if value is None else float(value)


def _snapshot_fields(customer: Customer) -> dict:
    return dict(
        customer_id=customer.id,
        name=customer.name,
        short_name=customer.short_name,
        customer_type=customer.customer_type,
        industry=customer.industry,
        size_band=customer.size_band,
        region=customer.region,
        status=customer.status,
        account_manager=customer.account_manager,
        contract_end=customer.contract_end,
        service_types=list(customer.service_types or []),
        credit_limit=_float(customer.credit_limit),
        payment_days=customer.payment_days,
        share_of_wallet=_float(customer.share_of_wallet),
        potential_volume=customer.potential_volume,
        relationship_level=customer.relationship_level,
        service_level_agreement=customer.service_level_agreement or {},
        tags=customer.tags,
        contacts=contact_snapshots(customer),
    )


def registered(customer: Customer) -> CustomerRegisteredV3:
    return CustomerRegisteredV3(**_snapshot_fields(customer))


def updated(customer: Customer, changed_fields: list[str]) -> CustomerUpdatedV3:
    return CustomerUpdatedV3(**_snapshot_fields(customer), changed_fields=sorted(set(changed_fields)))


def merged(survivor_id: str, merged_id: str, merged_at: dt.datetime) -> CustomerMerged:
    return CustomerMerged(survivor_id=survivor_id, merged_id=merged_id, merged_at=merged_at)


def erased(customer_id: str, contact_id: str | None, erased_at: dt.datetime) -> CustomerErased:
    return CustomerErased(customer_id=customer_id, contact_id=contact_id, erased_at=erased_at)
