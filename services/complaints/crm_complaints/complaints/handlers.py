"""Events in: TMS shipment incidents open complaints, a batch at a time; customer and scoring events feed the local
directory (and raise the priority of open complaints after a tier or credit change), mapped from payload type to handler.

Both consumers run through crm_common.consumer.InboxConsumer, so a redelivered event changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.consumer import Event
from crm_complaints.complaints import directory, erasure
from crm_complaints.complaints.clocks import reprioritize_open
from crm_complaints.complaints.incidents import Incident, open_from_shipment_events
from crm_complaints.settings import ComplaintsSettings

Handler = Callable[[AsyncSession, Event, ComplaintsSettings], Awaitable[None]]


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


SHIPMENT_INCIDENTS = frozenset({"ShipmentDamaged", "ShipmentLost", "ShipmentDelayed"})

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


class ShipmentIncidentHandler:
    """Opens (or attaches to) complaints a whole consumer batch at a time: incidents.open_from_shipment_events."""

    name = "complaints-shipment-incidents"
    topics = ("logistics.orders",)
    event_types = SHIPMENT_INCIDENTS

    def __init__(self, settings: ComplaintsSettings | None = None):
        self.settings = settings or ComplaintsSettings()

    async def handle(self, session: AsyncSession, event: Event) -> None:
        await self.handle_batch(session, [event])

    async def handle_batch(self, session: AsyncSession, events: Sequence[Event]) -> None:
        batch = [Incident(e.payload, str(e.envelope.event_id), e.envelope.correlation_id) for e in events]  # type: ignore[arg-type]
        await open_from_shipment_events(session, batch, settings=self.settings)


class CustomerDirectoryHandler(_MappedHandler):
    name = "complaints-customer-directory"
    topics = ("crm.customers", "crm.scoring")
    handlers = DIRECTORY_HANDLERS
    event_types = frozenset(DIRECTORY_HANDLERS)


def default_handlers(settings: ComplaintsSettings) -> list:
    return [ShipmentIncidentHandler(settings), CustomerDirectoryHandler(settings)]
