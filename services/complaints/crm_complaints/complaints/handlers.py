"""Events in, as maps from payload type to handler: TMS shipment incidents open complaints; customer and scoring
events feed the local directory (and raise the priority of open complaints after a tier or credit change).

Both consumers run through crm_common.consumer.InboxConsumer, so a redelivered event changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_complaints.complaints import directory, erasure
from crm_complaints.complaints.clocks import reprioritize_open
from crm_complaints.complaints.intake import open_from_shipment_event
from crm_complaints.settings import ComplaintsSettings

Handler = Callable[[AsyncSession, Event, ComplaintsSettings], Awaitable[None]]


async def _shipment_incident(session: AsyncSession, event: Event, settings: ComplaintsSettings) -> None:
    await open_from_shipment_event(session, event.payload, event_id=str(event.envelope.event_id), settings=settings)


async def _customer_snapshot(session: AsyncSession, event: Event, settings: ComplaintsSettings) -> None:
    await directory.apply_snapshot(session, event.payload)


async def _customer_merged(session: AsyncSession, event: Event, settings: ComplaintsSettings) -> None:
    await directory.apply_merged(session, event.payload.survivor_id, event.payload.merged_id)


async def _customer_erased(session: AsyncSession, event: Event, settings: ComplaintsSettings) -> None:
    payload = event.payload
    await erasure.erase_person(session, payload.customer_id, payload.contact_id, erased_at=payload.erased_at)


async def _tier_changed(session: AsyncSession, event: Event, settings: ComplaintsSettings) -> None:
    await directory.apply_tier(session, event.payload.customer_id, tier=event.payload.new_tier)
    await reprioritize_open(session, event.payload.customer_id, settings=settings)


async def _customer_scored(session: AsyncSession, event: Event, settings: ComplaintsSettings) -> None:
    payload = event.payload
    await directory.apply_tier(session, payload.customer_id, tier=payload.tier, credit_grade=payload.credit_grade)
    await reprioritize_open(session, payload.customer_id, settings=settings)


SHIPMENT_HANDLERS: dict[str, Handler] = {
    "ShipmentDamaged": _shipment_incident,
    "ShipmentLost": _shipment_incident,
    "ShipmentDelayed": _shipment_incident,
}

DIRECTORY_HANDLERS: dict[str, Handler] = {
    "CustomerRegistered": _customer_snapshot,
    "CustomerUpdated": _customer_snapshot,
    "CustomerMerged": _customer_merged,
    "CustomerErased": _customer_erased,
    "CustomerTierChanged": _tier_changed,
    "CustomerScored": _customer_scored,
}


class _MappedHandler:
    """An InboxConsumer handler that dispatches on the envelope's type through `handlers`."""

    name: str
    topics: tuple[str, ...]
    handlers: dict[str, Handler]
    event_types: frozenset[str]

    def __init__(self, settings: ComplaintsSettings | None = None):
        self.settings = settings or ComplaintsSettings()

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await self.handlers[event.envelope.type](session, event, self.settings)


class ShipmentIncidentHandler(_MappedHandler):
    name = "complaints-shipment-incidents"
    topics = ("logistics.orders",)
    handlers = SHIPMENT_HANDLERS
    event_types = frozenset(SHIPMENT_HANDLERS)


class CustomerDirectoryHandler(_MappedHandler):
    name = "complaints-customer-directory"
    topics = ("crm.customers", "crm.scoring")
    handlers = DIRECTORY_HANDLERS
    event_types = frozenset(DIRECTORY_HANDLERS)


def default_handlers(settings: ComplaintsSettings) -> list:
    return [ShipmentIncidentHandler(settings), CustomerDirectoryHandler(settings)]
