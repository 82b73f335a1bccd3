"""The complaints runtime: the shared ServiceRuntime plus the SLA scheduler, this service's consumers and the purge of expired
idempotency records."""
from __future__ import annotations

import asyncio

from crm_common.idempotency import keep_idempotency_records
from crm_common.runtime import ServiceRuntime
from crm_complaints.settings import ComplaintsSettings


class ComplaintsRuntime(ServiceRuntime):
    def __init__(self, settings: ComplaintsSettings, handlers=None):
        if handlers is None:
            from crm_complaints.complaints.handlers import default_handlers

            handlers = default_handlers(settings)
        super().__init__(settings, handlers=handlers)
        keep_idempotency_records(self)
        self.scheduler = None

    async def start(self, *, relay: bool | None = None, consumers: bool | None = None, scheduler: bool | None = None) -> None:
        await super().start(relay=relay, consumers=consumers)
        if self.settings.run_scheduler if scheduler is None else scheduler:
            from crm_complaints.complaints.scheduler import SlaScheduler

            self.scheduler = SlaScheduler(self.db, self.settings, on_commit=self.relay.wake)
            self._tasks.append(asyncio.create_task(self.scheduler.run(), name="complaints-sla-scheduler"))

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        await super().stop()
