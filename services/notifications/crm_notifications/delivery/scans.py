"""Periodic triggers that no event announces: contract renewal reminders and win-back outreach.

Each scan derives a deterministic trigger id (customer + contract end / lost date), so running the
scan again, or on two replicas, adds nothing: the (event id, rule, contact) key already exists.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_notifications.delivery.models import Message
from crm_notifications.delivery.pipeline import Trigger, process_trigger
from crm_notifications.directory.models import CustomerRecord


async def renewal_scan(session: AsyncSession, now: dt.datetime, *, days_before: int, survey_base_url: str = "") -> list[Message]:
    today = now.date()
    horizon = today + dt.timedelta(days=days_before)
    customers = (
        await session.scalars(
            select(CustomerRecord).where(
                CustomerRecord.contract_end.is_not(None),
                CustomerRecord.contract_end >= today,
                CustomerRecord.contract_end <= horizon,
                CustomerRecord.erased.is_(False),
                CustomerRecord.merged_into.is_(None),
            )
        )
    ).all()
    produced: list[Message] = []
    for customer in customers:
        trigger = Trigger(
            f"renewal:{customer.customer_id}:{customer.contract_end.isoformat()}",
            "ContractRenewalDue",
            customer.customer_id,
            {
                "customer_id": customer.customer_id,
                "contract_end": customer.contract_end.isoformat(),
                "days_to_contract_end": (customer.contract_end - today).days,
            },
        )
        produced += await process_trigger(session, trigger, now, survey_base_url=survey_base_url)
    return produced


async def winback_scan(session: AsyncSession, now: dt.datetime, *, after_days: int, survey_base_url: str = "") -> list[Message]:
    cutoff = now - dt.timedelta(days=after_days)
    customers = (
        await session.scalars(
            select(CustomerRecord).where(
                CustomerRecord.status == "lost",
                CustomerRecord.status_since.is_not(None),
                CustomerRecord.status_since <= cutoff,
                CustomerRecord.erased.is_(False),
                CustomerRecord.merged_into.is_(None),
            )
        )
    ).all()
    produced: list[Message] = []
    for customer in customers:
        trigger = Trigger(
            f"winback:{customer.customer_id}:{customer.status_since.date().isoformat()}",
            "CustomerWinBack",
            customer.customer_id,
            {
                "customer_id": customer.customer_id,
                "lost_since": customer.status_since.date().isoformat(),
                "lost_days": (now - customer.status_since).days,
            },
        )
        produced += await process_trigger(session, trigger, now, survey_base_url=survey_base_url)
    return produced
