from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.outbox import emit
from crm_common.problems import Problem
from crm_profile import SERVICE_NAME
from crm_profile.customers import events
from crm_profile.customers.models import Contact, Customer
from crm_profile.customers.schemas import CustomerCreate


async def create_customer(session: AsyncSession, data: CustomerCreate) -> Customer:
    customer = Customer(
        id=str(uuid.uuid4()),
        name=data.name,
        customer_type=data.customer_type,
        industry=data.industry,
        region=data.region,
        status="prospect",
        version=1,
    )
    if data.contact is not None:
        customer.contacts = [Contact(id=str(uuid.uuid4()), name=data.contact.name, phone=data.contact.phone, email=data.contact.email)]
    else:
        customer.contacts = []
    session.add(customer)
    await session.flush()
    await emit(session, events.registered(customer), key=customer.id, producer=SERVICE_NAME)
    return customer


async def get_customer(session: AsyncSession, customer_id: str) -> Customer:
    customer = await session.scalar(select(Customer).where(Customer.id == customer_id))
    if customer is None:
        raise Problem(404, "Customer not found", f"No customer with id {customer_id}.")
    return customer
