"""Consumers: TMS shipment incidents open complaints; customer and scoring events feed the local directory.

Both run through crm_common.consumer.InboxConsumer, so a redelivered event changes nothing twice.
"""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_complaints.complaints import directory, erasure, service
from crm_complaints.settings import ComplaintsSettings


class ShipmentIncidentHandler:
    name = "complaints-shipment-incidents"
    topics = ("logistics.orders",)
    event_types = frozenset({"ShipmentDamaged", "ShipmentLost", "ShipmentDelayed"})

    def __init__(self, settings: ComplaintsSettings):
        self.settings = settings

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await service.open_from_shipment_event(session, event.payload, event_id=str(event.envelope.event_id), settings=self.settings)


class CustomerDirectoryHandler:
    name = "complaints-customer-directory"
    topics = ("crm.customers", "crm.scoring")
    event_types = frozenset({"CustomerRegistered", "CustomerUpdated", "CustomerMerged", "CustomerErased",
                             "CustomerTierChanged", "CustomerScored"})

    def __init__(self, settings: ComplaintsSettings | None = None):
        self.settings = settings or ComplaintsSettings()

    async def handle(self, session: AsyncSession, event: Event) -> None:
        payload = event.payload
        kind = event.envelope.type
        if kind in ("CustomerRegistered", "CustomerUpdated"):
            await directory.apply_snapshot(session, payload)
        elif kind == "CustomerMerged":
            await directory.apply_merged(session, payload.survivor_id, payload.merged_id)
        elif kind == "CustomerErased":
            await erasure.erase_person(session, payload.customer_id, payload.contact_id, erased_at=payload.erased_at)
        elif kind == "CustomerTierChanged":
            await directory.apply_tier(session, payload.customer_id, tier=payload.new_tier)
            await service.reprioritize_open(session, payload.customer_id, settings=self.settings)
        elif kind == "CustomerScored":
            await directory.apply_tier(session, payload.customer_id, tier=payload.tier, credit_grade=payload.credit_grade)
            await service.reprioritize_open(session, payload.customer_id, settings=self.settings)


def default_handlers(settings: ComplaintsSettings) -> list:
    return [ShipmentIncidentHandler(settings), CustomerDirectoryHandler(settings)]
