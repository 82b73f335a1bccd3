"""The complaints runtime: the shared ServiceRuntime plus this service's consumers, the SLA scheduler (a background loop
where `run_scheduler` says) and the purge of expired idempotency records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_common.idempotency import keep_idempotency_records
from crm_common.runtime import ServiceRuntime
from crm_complaints.settings import ComplaintsSettings

if TYPE_CHECKING:
    from crm_complaints.complaints.scheduler import SlaScheduler


class ComplaintsRuntime(ServiceRuntime):
    def __init__(self, settings: ComplaintsSettings, handlers=None):
        if handlers is None:
            from crm_complaints.complaints.handlers import default_handlers

            handlers = default_handlers(settings)
        super().__init__(settings, handlers=handlers)
        keep_idempotency_records(self)
        self.scheduler: SlaScheduler | None = None
        if settings.run_scheduler:
            # a pass escalates in its own transactions: the loop ends after the pass in hand
            self.add_background_loop("sla-scheduler", self._run_scheduler, stop=lambda: self.scheduler and self.scheduler.stop())

    def _run_scheduler(self):
        from crm_complaints.complaints.scheduler import SlaScheduler

        self.scheduler = SlaScheduler(self.db, self.settings, on_commit=self.relay.wake)  # a new one per start: a stopped one stays stopped
        return self.scheduler.run()
