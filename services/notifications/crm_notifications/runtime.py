"""The service runtime: the shared one (db, outbox relay, consumers) plus the dispatcher and the scans, two background
loops of the runtime (run where the settings say, in the API and the worker alike), and the default templates and
rules seeded before they start."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import IntegrityError

from crm_common.idempotency import keep_idempotency_records
from crm_common.runtime import ServiceRuntime
from crm_notifications import configuration, defaults
from crm_notifications.channels.base import Channel
from crm_notifications.channels.registry import build_channels
from crm_notifications.clock import Clock
from crm_notifications.delivery import scans
from crm_notifications.delivery.dispatcher import Dispatcher
from crm_notifications.delivery.handlers import NotificationsHandler
from crm_notifications.settings import NotificationsSettings

log = logging.getLogger(__name__)


class NotificationsRuntime(ServiceRuntime):
    settings: NotificationsSettings

    def __init__(self, settings: NotificationsSettings, *, clock: Clock | None = None, channels: dict[str, Channel] | None = None):
        self.clock = clock or Clock()
        self.handler = NotificationsHandler(
            self.clock,
            survey_base_url=settings.survey_base_url,
            on_enqueued=self._wake_dispatcher,
            erasure_secret=settings.erasure_secret.get_secret_value(),
            unresolved_retry_s=settings.unknown_contact_retry_s,
        )
        super().__init__(settings, handlers=[self.handler])
        keep_idempotency_records(self)
        self.channels = channels or build_channels(settings, self.db)
        self.dispatcher = Dispatcher(self.db, self.channels, settings, self.clock, on_commit=self.relay.wake)
        if settings.run_dispatcher:
            self.add_gauge_refresher(self.dispatcher.update_queue_metrics)
            self.add_background_loop("dispatcher", self.dispatcher.run)
        if settings.run_scans:
            self.add_background_loop("scans", self._scan_loop)
        if settings.seed_defaults:
            self.add_startup_hook(self.seed_defaults)
        self.add_shutdown_hook(self._close_channels)
        configuration.cache_for(self.db.engine).refresh_s = settings.config_refresh_s

    def _wake_dispatcher(self) -> None:
        dispatcher = getattr(self, "dispatcher", None)
        if dispatcher is not None:
            dispatcher.wake()

    async def seed_defaults(self) -> tuple[int, int]:
        try:
            async with self.transaction() as session:
                return await defaults.seed(session)
        except IntegrityError:  # another replica seeded at the same moment
            return 0, 0

    async def run_scans(self) -> int:
        """One pass of the periodic triggers; returns the number of messages created."""
        now = self.clock.now()
        async with self.transaction() as session:
            produced = await scans.renewal_scan(
                session, now, days_before=self.settings.renewal_days_before, survey_base_url=self.settings.survey_base_url
            )
            produced += await scans.winback_scan(
                session, now, after_days=self.settings.winback_after_days, survey_base_url=self.settings.survey_base_url
            )
        if produced:
            self.dispatcher.wake()
        return len(produced)

    async def _scan_loop(self) -> None:
        while True:
            try:
                await self.run_scans()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic scan failed")
            await asyncio.sleep(self.settings.scan_interval_s)

    async def _close_channels(self) -> None:
        for channel in self.channels.values():
            close = getattr(channel, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.warning("closing channel %s failed", getattr(channel, "name", "?"), exc_info=True)
