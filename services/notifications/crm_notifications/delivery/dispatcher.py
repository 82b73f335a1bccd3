"""Drains the durable send queue: claim a due message, decide (erased, consent, quiet hours, caps),
render, send outside the transaction, record the outcome and emit NotificationSent/NotificationFailed.

A claim is a lease (status `sending` until `lease_until`). If the process dies mid-send the lease
runs out and the next dispatcher sends again with the same message id (SMTP Message-ID, provider
Idempotency-Key, inbox unique key), so a restart can duplicate at the channel at worst, never lose.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from crm_common.db import Database
from crm_common.events.notifications import NotificationFailed, NotificationSent
from crm_common.outbox import emit
from crm_notifications import SERVICE_NAME, catalog
from crm_notifications.channels.base import Channel, ChannelError, OutgoingMessage
from crm_notifications.clock import Clock
from crm_notifications.delivery.models import (
    DEFERRED, DELIVERED, DUE_STATUSES, FAILED, SENDING, SENT, SUPPRESSED, Attempt, Message, Notification,
)
from crm_notifications.delivery.pipeline import WAITING_FOR_CONTACT, capped_categories, unsubscribe_token
from crm_notifications.directory import erasure
from crm_notifications.directory import service as directory
from crm_notifications.directory.models import ContactRecord
from crm_notifications.metrics import MESSAGE_TRANSITIONS, SEND_LATENCY
from crm_notifications.preferences.policy import DEFER, SUPPRESS, ContactView, choose_channel, decide
from crm_notifications.settings import NotificationsSettings, RetryPolicy
from crm_notifications.templates import service as templates
from crm_notifications.templates.rendering import RenderError

log = logging.getLogger(__name__)


def backoff(policy: RetryPolicy, attempt: int) -> dt.timedelta:
    """Delay before the next try after `attempt` failed tries: base * 2**(attempt-1), capped at max."""
    return dt.timedelta(seconds=min(policy.max_s, policy.base_s * (2 ** max(0, attempt - 1))))


class Dispatcher:
    def __init__(self, db: Database, channels: dict[str, Channel], settings: NotificationsSettings, clock: Clock | None = None,
                 *, on_commit=None):
        self.db = db
        self.channels = channels
        self.settings = settings
        self.clock = clock or Clock()
        self.on_commit = on_commit or (lambda: None)  # wakes the outbox relay
        self._stopping = False
        self._wake = asyncio.Event()

    def policy(self, channel: str) -> RetryPolicy:
        return self.settings.retry.get(channel) or RetryPolicy()

    async def due(self, now: dt.datetime) -> list[tuple[str, str]]:
        """(message id, recipient key) of messages due now, oldest first."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Message.id, Message.recipient_key)
                .where(self._due(now))
                .order_by(Message.next_attempt_at, Message.id)
                .limit(self.settings.dispatcher_batch_size)
            )
            return [(row.id, row.recipient_key) for row in rows]

    async def due_ids(self, now: dt.datetime) -> list[str]:
        return [message_id for message_id, _ in await self.due(now)]

    @staticmethod
    def _due(now: dt.datetime):
        return or_(
            and_(Message.status.in_(DUE_STATUSES), Message.next_attempt_at <= now),
            and_(Message.status == SENDING, Message.lease_until < now),
        )

    async def run_once(self) -> int:
        """Handle every message due now; returns how many were handled.

        Different recipients are served concurrently (a slow provider does not hold up the rest);
        one recipient's messages go one after the other, so frequency caps count exactly.
        """
        groups: dict[str, list[str]] = defaultdict(list)
        for message_id, recipient in await self.due(self.clock.now()):
            groups[recipient].append(message_id)
        limit = asyncio.Semaphore(max(1, self.settings.dispatcher_concurrency))

        async def serve(ids: list[str]) -> int:
            handled = 0
            async with limit:
                for message_id in ids:
                    handled += await self._process_safely(message_id)
            return handled

        return sum(await asyncio.gather(*(serve(ids) for ids in groups.values())))

    async def _process_safely(self, message_id: str) -> int:
        try:
            return int(await self.process(message_id))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or the database: keep the message, try again later, do not spin on it
            log.exception("dispatching %s failed", message_id)
            try:
                now = self.clock.now()
                async with self.db.transaction() as session:
                    await session.execute(
                        update(Message).where(Message.id == message_id)
                        .values(status=DEFERRED, lease_until=None, reason=f"internal error: {type(exc).__name__}"[:500],
                                next_attempt_at=now + dt.timedelta(seconds=60), updated_at=now)
                    )
            except Exception:
                log.exception("could not park %s", message_id)
            return 0

    async def process(self, message_id: str) -> bool:
        now = self.clock.now()
        async with self.db.transaction() as session:
            claimed = await session.execute(
                update(Message).where(Message.id == message_id, self._due(now))
                .values(status=SENDING, lease_until=now + dt.timedelta(seconds=self.settings.send_lease_s), updated_at=now)
            )
            if not claimed.rowcount:
                return False  # another dispatcher took it
            message = await session.get(Message, message_id)
            outgoing = await self._prepare(session, message, now)
            if outgoing is None:
                return True
            message.attempts += 1
            attempt = message.attempts
        channel = self.channels.get(outgoing.channel)
        started = time.perf_counter()
        try:
            if channel is None:
                raise ChannelError(f"channel {outgoing.channel} is not configured", transient=False)
            result = await channel.send(outgoing)
        except ChannelError as exc:
            SEND_LATENCY.labels(outgoing.channel, "error").observe(time.perf_counter() - started)
            await self._failed(message_id, attempt, exc)
        except Exception as exc:  # a bug in an adapter: treat as transient, keep the message
            log.exception("channel %s crashed", outgoing.channel)
            await self._failed(message_id, attempt, ChannelError(f"{type(exc).__name__}: {exc}", transient=True))
        else:
            SEND_LATENCY.labels(outgoing.channel, "ok").observe(time.perf_counter() - started)
            await self._succeeded(message_id, attempt, result.status, result.provider_id)
        return True

    async def _prepare(self, session, message: Message, now: dt.datetime) -> OutgoingMessage | None:
        """Decide and render inside the claim transaction; None when the message was suppressed or deferred."""
        view = await self._recipient(session, message)
        if view is None:  # a contact id we still know nothing about
            if now - message.created_at < dt.timedelta(seconds=self.settings.unknown_contact_give_up_s):
                self._set(session, message, DEFERRED, now, reason=WAITING_FOR_CONTACT,
                          next_attempt_at=now + dt.timedelta(seconds=self.settings.unknown_contact_retry_s))
            else:
                self._set(session, message, SUPPRESSED, now, reason="unknown contact")
            return None
        internal = message.channel == "inbox"
        sent_day, sent_week = await self._sent_counts(session, message, now)
        decision = decide(
            view, category=message.category, urgency=message.urgency, now=now, sent_last_day=sent_day, sent_last_week=sent_week,
            per_day=self.settings.cap_per_day, per_week=self.settings.cap_per_week, internal=internal,
        )
        if decision.action == SUPPRESS:
            self._set(session, message, SUPPRESSED, now, reason=decision.reason)
            return None
        if decision.action == DEFER:
            self._set(session, message, DEFERRED, now, reason=decision.reason, next_attempt_at=decision.until)
            return None
        if not internal and view.contact_id is not None:  # addresses and channel choice may have changed since queueing
            channel = choose_channel(view, message.channel if message.channel else "preferred", message.category)
            if channel is None:
                self._set(session, message, SUPPRESSED, now, reason=f"no address for channel {message.channel}")
                return None
            message.channel, message.address, message.language = channel, view.addresses[channel], view.language
        try:
            subject, body, version, extra = await self._render(session, message, view)
        except RenderError as exc:
            self._set(session, message, FAILED, now, reason=f"render failed: {exc}")
            await self._emit_failed(session, message, str(exc), now)
            return None
        message.subject, message.body, message.template_version = subject, body, version
        session.add(Attempt(message_id=message.id, customer_id=message.customer_id, attempt=message.attempts + 1, status=SENDING,
                            detail=f"{message.channel} attempt {message.attempts + 1}", at=now))
        return OutgoingMessage(message.id, message.channel, message.address, subject, body, message.language, message.customer_id,
                               message.category, metadata=extra, contact_id=message.contact_id)

    async def _recipient(self, session, message: Message) -> ContactView | None:
        customer = await directory.customer(session, message.customer_id)
        erased_customer = bool(customer and customer.erased)
        if message.contact_id:
            row = await session.get(ContactRecord, message.contact_id)
            if row is not None:
                return await directory.contact_view(session, row, erased_customer)
            return None
        erased = erased_customer or await erasure.is_erased_address(session, self.settings.erasure_secret, message.address)
        return ContactView(None, language=message.language, addresses={message.channel: message.address} if message.address else {},
                           erased=erased)

    async def _sent_counts(self, session, message: Message, now: dt.datetime) -> tuple[int, int]:
        if catalog.category_kind(message.category) not in ("service", "marketing"):
            return 0, 0
        base = select(func.count()).where(
            Message.recipient_key == message.recipient_key,
            Message.status.in_((SENT, DELIVERED)),
            Message.category.in_(capped_categories()),
            Message.id != message.id,
        )
        day = await session.scalar(base.where(Message.sent_at >= now - dt.timedelta(days=1)))
        week = await session.scalar(base.where(Message.sent_at >= now - dt.timedelta(days=7)))
        return int(day or 0), int(week or 0)

    async def _render(self, session, message: Message, view: ContactView) -> tuple[str, str, int, dict[str, Any]]:
        template = await templates.current(session, message.template_key, message.language)
        if template is None:
            raise RenderError(f"template {message.template_key!r} does not exist")
        items = list(
            (await session.scalars(select(Notification.variables).where(Notification.message_id == message.id).order_by(Notification.created_at))).all()
        )
        if not items:
            raise RenderError("message has no notifications")
        context = dict(items[0])
        context["items"] = items
        context["item_count"] = len(items)
        extra: dict[str, Any] = {"data": {"items": items} if message.digest_group else items[0]}
        kind = catalog.category_kind(message.category)
        unsubscribe = None
        if view.contact_id and kind in ("marketing", "service"):
            token = unsubscribe_token(self.settings.unsubscribe_secret, view.contact_id, message.category)
            unsubscribe = f"{self.settings.public_base_url.rstrip('/')}/preferences/unsubscribe?token={token}"
        context["unsubscribe_url"] = unsubscribe or ""
        subject, body = templates.render_version(template, context)
        if kind == "marketing" and unsubscribe is None:
            raise RenderError("a marketing message needs a contact to unsubscribe")
        if unsubscribe and unsubscribe not in body and kind == "marketing":
            footer = "退订：" if message.language == "zh-CN" else "Unsubscribe: "
            body = body.rstrip("\n") + f"\n\n{footer}{unsubscribe}\n"
        if unsubscribe:
            extra["unsubscribe_url"] = unsubscribe
        return subject, body, template.version, extra

    def _set(self, session, message: Message, status: str, now: dt.datetime, *, reason: str | None = None,
             next_attempt_at: dt.datetime | None = None, detail: str | None = None) -> None:
        message.status = status
        message.reason = reason
        message.lease_until = None
        MESSAGE_TRANSITIONS.labels(message.channel, status).inc()
        message.updated_at = now
        if next_attempt_at is not None:
            message.next_attempt_at = next_attempt_at
        session.add(Attempt(message_id=message.id, customer_id=message.customer_id, attempt=message.attempts, status=status,
                            detail=detail or reason, at=now))

    async def _succeeded(self, message_id: str, attempt: int, status: str, provider_id: str | None) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            message = await session.get(Message, message_id)
            message.sent_at = now
            message.provider_id = provider_id
            message.last_error = None
            self._set(session, message, DELIVERED if status == DELIVERED else SENT, now, detail=f"{message.channel} accepted (attempt {attempt})")
            await emit(
                session,
                NotificationSent(notification_id=message.id, customer_id=message.customer_id, contact_id=message.contact_id,
                                 channel=message.channel, template=message.template_key, rule=message.rule_name, sent_at=now),
                key=message.customer_id, producer=SERVICE_NAME,
            )
        self.on_commit()

    async def _failed(self, message_id: str, attempt: int, error: ChannelError) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            message = await session.get(Message, message_id)
            if message.status == SUPPRESSED and message.reason == erasure.ERASED_REASON:
                # the person was erased while this send was in flight: no retry, and the error (it may quote the
                # address) is not kept
                session.add(Attempt(message_id=message.id, customer_id=message.customer_id, attempt=attempt, status=SUPPRESSED,
                                    detail=f"attempt {attempt} failed after the contact was erased; not retried", at=now))
                return
            message.last_error = str(error)[:2000]
            policy = self.policy(message.channel)
            if error.transient and attempt < policy.max_attempts:
                retry_at = now + backoff(policy, attempt)
                self._set(session, message, DEFERRED, now, reason=f"retry {attempt}/{policy.max_attempts}: {error}"[:500],
                          next_attempt_at=retry_at, detail=f"attempt {attempt} failed: {error}; next at {retry_at.isoformat()}")
                log.warning("message %s attempt %d failed, retry at %s: %s", message_id, attempt, retry_at, error)
                return
            self._set(session, message, FAILED, now, reason=str(error)[:500], detail=f"attempt {attempt} failed for good: {error}")
            await self._emit_failed(session, message, str(error), now)
        self.on_commit()

    async def _emit_failed(self, session, message: Message, error: str, now: dt.datetime) -> None:
        await emit(
            session,
            NotificationFailed(notification_id=message.id, customer_id=message.customer_id, contact_id=message.contact_id,
                               channel=message.channel, template=message.template_key, rule=message.rule_name, error=error[:2000],
                               attempts=message.attempts, failed_at=now),
            key=message.customer_id, producer=SERVICE_NAME,
        )

    # background loop
    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                handled = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher pass failed")
                handled = 0
            if handled < self.settings.dispatcher_batch_size:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.dispatcher_poll_interval_s)
                except asyncio.TimeoutError:
                    pass
