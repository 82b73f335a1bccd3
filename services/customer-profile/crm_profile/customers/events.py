"""How a customer row becomes the events other services read."""
from __future__ import annotations

from crm_common.events.customers import ContactSnapshot, CustomerRegistered
from crm_profile.customers.models import Customer


def contact_snapshots(customer: Customer) -> list[ContactSnapshot]:
    return [ContactSnapshot(contact_id=c.id, name=c.name, phone=c.phone, email=c.email) for c in customer.contacts]


def registered(customer: Customer) -> CustomerRegistered:
    return CustomerRegistered(
        customer_id=customer.id,
        name=customer.name,
        customer_type=customer.customer_type,
        industry=customer.industry,
        region=customer.region,
        status=customer.status,
        contacts=contact_snapshots(customer),
    )
