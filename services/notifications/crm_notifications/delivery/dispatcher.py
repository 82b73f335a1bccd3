"""Drains the durable send queue: claim a due message, decide (erased, consent, quiet hours, caps),
render, send outside the transaction, record the outcome and emit NotificationSent/NotificationFailed.

A claim is a lease (status `sending` until `lease_until`). If the process dies mid-send the lease
runs out and the next dispatcher sends again with the same message id (SMTP Message-ID, provider
Idempotency-Key, inbox unique key), so a restart can duplicate at the channel at worst, never lose.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import and_, case, false, func, insert, select, update

from crm_common import tracing
from crm_common.context import current_correlation_id
from crm_common.db import Database
from crm_common.events.envelope import EventEnvelope, make_event
from crm_common.events.notifications import NotificationFailed, NotificationSent
from crm_common.outbox import add_to_outbox
from crm_notifications import SERVICE_NAME, catalog, reasons
from crm_notifications.channels.base import Channel, ChannelError, ChannelResult, OutgoingMessage
from crm_notifications.clock import Clock
from crm_notifications.delivery.models import (
    CAPPED_STATUSES,
    DEFERRED,
    DELIVERED,
    DUE_ORDER,
    DUE_STATUSES,
    FAILED,
    SENDING,
    SENT,
    SUPPRESSED,
    Attempt,
    Message,
    Notification,
    status_in,
)
from crm_notifications.delivery.pipeline import WAITING_FOR_CONTACT, capped_categories, unsubscribe_token
from crm_notifications.directory import erasure
from crm_notifications.directory import service as directory
from crm_notifications.directory.models import CustomerRecord, ErasedAddress
from crm_notifications.metrics import DISPATCH_QUEUE_DUE, DISPATCH_QUEUE_OLDEST_DUE_AGE, MESSAGE_TRANSITIONS, SEND_LATENCY
from crm_notifications.preferences.policy import DEFER, SUPPRESS, ContactView, choose_channel, decide
from crm_notifications.settings import NotificationsSettings, RetryPolicy
from crm_notifications.templates import service as templates
from crm_notifications.templates.rendering import RenderError

log = logging.getLogger(__name__)


def backoff(policy: RetryPolicy, attempt: int) -> dt.timedelta:
    """Delay before the next try after `attempt` failed tries: base * 2**(attempt-1), capped at max."""
    return dt.timedelta(seconds=min(policy.max_s, policy.base_s * (2 ** max(0, attempt - 1))))


class Dispatcher:
    def __init__(
        self, db: Database, channels: dict[str, Channel], settings: NotificationsSettings, clock: Clock | None = None, *, on_commit=None
    ):
        self.db = db
        self.channels = channels
        self.settings = settings
        self.clock = clock or Clock()
        self.on_commit = on_commit or (lambda: None)  # wakes the outbox relay
        self._stopping = False
        self._wake = asyncio.Event()
        self._limits: dict[str, asyncio.Semaphore] = {}

    def policy(self, channel: str) -> RetryPolicy:
        return self.settings.retry.get(channel) or RetryPolicy()

    async def due(self, now: dt.datetime) -> list[tuple[str, str]]:
        """(message id, recipient key) of messages due now, in DUE_ORDER: the earliest due first and, among those due
        at the same instant, by priority, then when their event occurred, then id.

        Waiting messages and lapsed leases are asked for apart, each in that order (the waiting ones along their partial
        index), and merged here: one query with OR sorted every due message of the queue to return a batch."""
        limit = self.settings.dispatcher_batch_size
        order = [getattr(Message, name) for name in DUE_ORDER]
        columns = (Message.recipient_key, *order)
        async with self.db.sessions() as session:
            waiting = (await session.execute(select(*columns).where(self._waiting(now)).order_by(*order).limit(limit))).all()
            lapsed = (await session.execute(select(*columns).where(self._lapsed(now)).order_by(*order).limit(limit))).all()
        rows = sorted([*waiting, *lapsed], key=lambda row: tuple(getattr(row, name) for name in DUE_ORDER))[:limit]
        return [(row.id, row.recipient_key) for row in rows]

    async def update_queue_metrics(self) -> int:
        """The queue's gauges (refreshed by the runtime): how many messages are due now and since when the oldest is."""
        now = self.clock.now()
        async with self.db.sessions() as session:
            waiting, waiting_since = (
                await session.execute(select(func.count(), func.min(Message.next_attempt_at)).where(self._waiting(now)))
            ).one()
            lapsed, lapsed_since = (
                await session.execute(select(func.count(), func.min(Message.lease_until)).where(self._lapsed(now)))
            ).one()
        oldest = min((since for since in (waiting_since, lapsed_since) if since is not None), default=None)
        DISPATCH_QUEUE_DUE.set(waiting + lapsed)
        DISPATCH_QUEUE_OLDEST_DUE_AGE.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        return waiting + lapsed

    async def due_ids(self, now: dt.datetime) -> list[str]:
        return [message_id for message_id, _ in await self.due(now)]

    @staticmethod
    def _waiting(now: dt.datetime):
        return and_(status_in(Message.status, DUE_STATUSES), Message.next_attempt_at <= now)

    @staticmethod
    def _lapsed(now: dt.datetime):
        return and_(status_in(Message.status, (SENDING,)), Message.lease_until < now)

    async def run_once(self) -> int:
        """Handle every message due now; returns how many were handled.

        The due messages go in batches: one transaction claims, decides and renders a batch, the sends run
        concurrently (bounded per channel), one transaction per channel records the outcomes. A recipient
        appears at most once per batch (their second due message goes in the next round), so frequency caps
        count exactly what was sent before.
        """
        rounds: list[list[str]] = []
        seen: dict[str, int] = defaultdict(int)
        for message_id, recipient in await self.due(self.clock.now()):
            position = seen[recipient]
            seen[recipient] += 1
            if position == len(rounds):
                rounds.append([])
            rounds[position].append(message_id)
        handled = 0
        for ids in rounds:
            handled += await self._process_round(ids)
        return handled

    async def _process_round(self, ids: list[str]) -> int:
        """A round in chunks, several in flight on PostgreSQL so one chunk's sends overlap the next one's database work.
        SQLite takes one writer at a time, so there the chunks go one after the other."""
        size = max(1, self.settings.dispatcher_chunk_size)
        chunks = [ids[start : start + size] for start in range(0, len(ids), size)]
        in_flight = asyncio.Semaphore(1 if self.db.dialect == "sqlite" else max(1, self.settings.dispatcher_chunks_in_flight))

        async def one(chunk: list[str]) -> int:
            async with in_flight:
                return await self._process_batch_safely(chunk)

        return sum(await asyncio.gather(*(one(chunk) for chunk in chunks)))

    async def process(self, message_id: str) -> bool:
        """Claim, decide, send and record one message (False when another dispatcher has it)."""
        return bool(await self.process_batch([message_id]))

    async def _process_batch_safely(self, ids: list[str]) -> int:
        try:
            return await self.process_batch(ids)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or the database: keep the messages, try again later, do not spin on them
            log.exception("dispatching a batch of %d failed", len(ids))
            try:
                now = self.clock.now()
                async with self.db.transaction() as session:
                    await session.execute(
                        update(Message)
                        .where(Message.id.in_(ids), Message.status == SENDING)
                        .values(
                            status=DEFERRED,
                            lease_until=None,
                            **_reason(reasons.Reason("delivery.internal_error", error=type(exc).__name__)),
                            next_attempt_at=now + dt.timedelta(seconds=60),
                            updated_at=now,
                        )
                        .execution_options(synchronize_session=False)
                    )
            except Exception:
                log.exception("could not park %d messages", len(ids))
            return 0

    async def process_batch(self, ids: list[str]) -> int:
        """One round: the messages are of different recipients. Returns how many were handled.

        Tracing on, the batch runs in a `notifications dispatch` span in the trace of each message's event
        (tracing.batch_span) and each send in a `<channel> send` span of its message's trace."""
        service = self.settings.service_name
        if not tracing.enabled(service):
            return await self._dispatch(ids, {})
        queued_in = await self._traceparents(ids)
        attributes = {"crm.messages": len(ids)}
        with tracing.batch_span(service, "notifications dispatch", queued_in.values(), attributes=attributes) as continued:
            return await self._dispatch(ids, {message_id: continued.get(traceparent) for message_id, traceparent in queued_in.items()})

    async def _traceparents(self, ids: list[str]) -> dict[str, str]:
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Message.id, Message.traceparent).where(Message.id.in_(ids), Message.traceparent.is_not(None))
            )
            return {row.id: row.traceparent for row in rows}

    async def _dispatch(self, ids: list[str], traces: dict[str, str | None]) -> int:
        prepared, handled = await self._claim_and_prepare(ids)
        by_channel: dict[str, list[tuple[OutgoingMessage, int]]] = defaultdict(list)
        for outgoing, attempt in prepared:
            by_channel[outgoing.channel].append((outgoing, attempt))
        # one channel's slow provider does not hold up the recording of another channel's sends; a failure in one
        # group is raised only once every group has finished, so the batch is parked after, not during, their recording
        sends = (self._send_and_record(group, traces) for group in by_channel.values())
        for outcome in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        return handled

    async def _claim_and_prepare(self, ids: list[str]) -> tuple[list[tuple[OutgoingMessage, int]], int]:
        now = self.clock.now()
        prepared: list[tuple[OutgoingMessage, int]] = []
        async with self.db.transaction() as session:
            claimed = await self._claim(session, ids, now)
            if not claimed:
                return [], 0  # another dispatcher took them
            loaded = {m.id: m for m in (await session.scalars(select(Message).where(Message.id.in_(claimed)))).all()}
            messages = [loaded[message_id] for message_id in ids if message_id in loaded]
            facts = await self._facts(session, messages, now)
            for message in messages:
                try:
                    outgoing = await self._prepare(session, message, facts, now)
                except Exception as exc:  # a bug on one message parks that message, not the batch
                    log.exception("preparing %s failed", message.id)
                    message.status, message.lease_until, message.updated_at = DEFERRED, None, now
                    _set_reason(message, reasons.Reason("delivery.internal_error", error=type(exc).__name__))
                    message.next_attempt_at = now + dt.timedelta(seconds=60)
                    continue
                if outgoing is not None:
                    message.attempts += 1
                    prepared.append((outgoing, message.attempts))
            await _write_logs(session)
            if facts.events:
                await add_to_outbox(session, facts.events)
        if facts.events:
            self.on_commit()
        return prepared, len(messages)

    async def _claim(self, session, ids: list[str], now: dt.datetime) -> set[str]:
        """Lease the messages of `ids` that are still due; the others went to another dispatcher."""
        return set(
            (
                await session.execute(
                    update(Message)
                    .where(Message.id.in_(ids), self._still_due(now))
                    .values(status=SENDING, lease_until=now + dt.timedelta(seconds=self.settings.send_lease_s), updated_at=now)
                    .returning(Message.id)
                    .execution_options(synchronize_session=False)
                )
            ).scalars()
        )

    @staticmethod
    def _still_due(now: dt.datetime):
        """`_due` as one CASE, which no index matches, so a claim finds its rows by key. With `id IN (..) AND <due>`
        the planner, on statistics older than a segment send, read the whole queue through a status index per chunk."""
        return case(
            (status_in(Message.status, DUE_STATUSES), Message.next_attempt_at <= now),
            (status_in(Message.status, (SENDING,)), Message.lease_until < now),
            else_=false(),
        )

    async def _facts(self, session, messages: list[Message], now: dt.datetime) -> BatchFacts:
        """Everything the decisions and the rendering of a batch need, in a handful of queries."""
        customers = await directory.customers(session, {m.customer_id for m in messages})
        contacts = await directory.contacts_by_id(session, {m.contact_id for m in messages if m.contact_id})
        views = await directory.contact_views(session, contacts.values())
        erased_addresses = await self._erased_addresses(session, [m for m in messages if not m.contact_id])
        sent = await self._sent_counts(session, [m for m in messages if catalog.category_kind(m.category) in ("service", "marketing")], now)
        items: dict[str, list[dict]] = defaultdict(list)
        for ids in directory.chunks([m.id for m in messages]):
            rows = await session.execute(
                select(Notification.message_id, Notification.variables)
                .where(Notification.message_id.in_(ids))
                .order_by(Notification.created_at)
            )
            for row in rows:
                items[row.message_id].append(row.variables)
        return BatchFacts(customers, views, erased_addresses, sent, items, {}, [])

    async def _erased_addresses(self, session, messages: list[Message]) -> set[str]:
        """Ids of the messages (to reporters, no contact id) whose address belongs to an erased person."""
        hashes = {m.id: erasure.address_hash(m.address, self.settings.erasure_secret.get_secret_value()) for m in messages}
        wanted = {h for h in hashes.values() if h}
        if not wanted:
            return set()
        known = set((await session.scalars(select(ErasedAddress.address_hash).where(ErasedAddress.address_hash.in_(wanted)))).all())
        return {message_id for message_id, h in hashes.items() if h in known}

    async def _prepare(self, session, message: Message, facts: BatchFacts, now: dt.datetime) -> OutgoingMessage | None:
        """Decide and render inside the claim transaction; None when the message was suppressed or deferred."""
        view = self._recipient(message, facts)
        if view is None:  # a contact id we still know nothing about
            if now - message.created_at < dt.timedelta(seconds=self.settings.unknown_contact_give_up_s):
                self._set(
                    session,
                    message,
                    DEFERRED,
                    now,
                    reason=WAITING_FOR_CONTACT,
                    next_attempt_at=now + dt.timedelta(seconds=self.settings.unknown_contact_retry_s),
                )
            else:
                self._set(session, message, SUPPRESSED, now, reason=reasons.Reason("delivery.unknown_contact"))
            return None
        internal = message.channel == "inbox"
        sent_day, sent_week = facts.sent.get(message.recipient_key, (0, 0))
        decision = decide(
            view,
            category=message.category,
            urgency=message.urgency,
            now=now,
            sent_last_day=sent_day,
            sent_last_week=sent_week,
            per_day=self.settings.cap_per_day,
            per_week=self.settings.cap_per_week,
            internal=internal,
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
                self._set(session, message, SUPPRESSED, now, reason=reasons.Reason("delivery.no_address", channel=message.channel))
                return None
            message.channel, message.address, message.language = channel, view.addresses[channel], view.language
        try:
            subject, body, version, extra = await self._render(session, message, view, facts)
        except RenderError as exc:
            self._set(session, message, FAILED, now, reason=reasons.Reason("delivery.render_failed", error=str(exc)))
            facts.events.append(self._failed_event(message, str(exc), now))
            return None
        message.subject, message.body, message.template_version = subject, body, version
        _log(
            session,
            message_id=message.id,
            customer_id=message.customer_id,
            attempt=message.attempts + 1,
            status=SENDING,
            detail=f"{message.channel} attempt {message.attempts + 1}",
            at=now,
        )
        return OutgoingMessage(
            message.id,
            message.channel,
            message.address,
            subject,
            body,
            message.language,
            message.customer_id,
            message.category,
            metadata=extra,
            contact_id=message.contact_id,
        )

    @staticmethod
    def _recipient(message: Message, facts: BatchFacts) -> ContactView | None:
        customer = facts.customers.get(message.customer_id)
        erased_customer = bool(customer and customer.erased)
        if message.contact_id:
            view = facts.views.get(message.contact_id)
            if view is not None and erased_customer and not view.erased:
                view = dataclasses.replace(view, erased=True)
            return view
        erased = erased_customer or message.id in facts.erased_addresses
        return ContactView(
            None, language=message.language, addresses={message.channel: message.address} if message.address else {}, erased=erased
        )

    async def _sent_counts(self, session, messages: list[Message], now: dt.datetime) -> dict[str, tuple[int, int]]:
        """recipient key -> (sent in the last day, in the last week) of capped categories, for the batch at once.

        The windows are (now - 24 h, now] and (now - 7 days, now] by `sent_at`: one sent exactly 24 h ago no longer
        counts for the day. A message being handled is `sending`, so it never counts itself."""
        counts: dict[str, tuple[int, int]] = {}
        day_ago, week_ago = now - dt.timedelta(days=1), now - dt.timedelta(days=7)
        for keys in directory.chunks({m.recipient_key for m in messages}):
            rows = await session.execute(
                select(Message.recipient_key, func.count(case((Message.sent_at > day_ago, 1))), func.count())
                .where(
                    Message.recipient_key.in_(keys),
                    status_in(Message.status, CAPPED_STATUSES),
                    Message.category.in_(capped_categories()),
                    Message.sent_at > week_ago,
                    Message.sent_at <= now,
                )
                .group_by(Message.recipient_key)
            )
            for key, day, week in rows:
                counts[key] = (int(day or 0), int(week or 0))
        return counts

    async def _render(self, session, message: Message, view: ContactView, facts: BatchFacts) -> tuple[str, str, int, dict[str, Any]]:
        template_key = (message.template_key, message.language)
        if template_key not in facts.templates:
            facts.templates[template_key] = await templates.current_cached(session, message.template_key, message.language)
        template = facts.templates[template_key]
        if template is None:
            raise RenderError(f"template {message.template_key!r} does not exist")
        items = facts.items.get(message.id) or []
        if not items:
            raise RenderError("message has no notifications")
        context = dict(items[0])
        context["items"] = items
        context["item_count"] = len(items)
        extra: dict[str, Any] = {"data": {"items": items} if message.digest_group else items[0]}
        kind = catalog.category_kind(message.category)
        unsubscribe = None
        if view.contact_id and kind in ("marketing", "service"):
            token = unsubscribe_token(self.settings.unsubscribe_secret.get_secret_value(), view.contact_id, message.category)
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

    def _set(
        self,
        session,
        message: Message,
        status: str,
        now: dt.datetime,
        *,
        reason: str | None = None,
        next_attempt_at: dt.datetime | None = None,
        detail: str | None = None,
    ) -> None:
        message.status = status
        _set_reason(message, reason)
        message.lease_until = None
        MESSAGE_TRANSITIONS.labels(message.channel, status).inc()
        message.updated_at = now
        if next_attempt_at is not None:
            message.next_attempt_at = next_attempt_at
        _log(
            session,
            message_id=message.id,
            customer_id=message.customer_id,
            attempt=message.attempts,
            status=status,
            detail=detail or reason,
            at=now,
        )

    def _limit(self, channel: str) -> asyncio.Semaphore:
        """Sends in flight per channel: a provider is not flooded, and one channel does not starve another."""
        if channel not in self._limits:
            self._limits[channel] = asyncio.Semaphore(max(1, self.settings.dispatcher_concurrency))
        return self._limits[channel]

    async def _send(self, outgoing: OutgoingMessage, traceparent: str | None = None) -> ChannelResult | ChannelError:
        async with self._limit(outgoing.channel):
            attributes = {"crm.channel": outgoing.channel, "crm.message_id": outgoing.message_id}
            name = f"{outgoing.channel} send"
            with tracing.span_in(self.settings.service_name, name, traceparent, kind=SpanKind.CLIENT, attributes=attributes) as span:
                outcome = await self._send_now(outgoing)
                if span is not None and isinstance(outcome, ChannelError):
                    span.set_status(StatusCode.ERROR, str(outcome))
                return outcome

    async def _send_now(self, outgoing: OutgoingMessage) -> ChannelResult | ChannelError:
        channel = self.channels.get(outgoing.channel)
        started = time.perf_counter()
        try:
            if channel is None:
                raise ChannelError(f"channel {outgoing.channel} is not configured", transient=False)
            result = await channel.send(outgoing)
        except ChannelError as exc:
            SEND_LATENCY.labels(outgoing.channel, "error").observe(time.perf_counter() - started)
            return exc
        except Exception as exc:  # a bug in an adapter: treat as transient, keep the message
            log.exception("channel %s crashed", outgoing.channel)
            return ChannelError(f"{type(exc).__name__}: {exc}", transient=True)
        SEND_LATENCY.labels(outgoing.channel, "ok").observe(time.perf_counter() - started)
        return result

    async def _send_and_record(self, group: list[tuple[OutgoingMessage, int]], traces: dict[str, str | None]) -> None:
        outcomes = await asyncio.gather(*(self._send(outgoing, traces.get(outgoing.message_id)) for outgoing, _attempt in group))
        await self._record([(outgoing.message_id, attempt, outcome) for (outgoing, attempt), outcome in zip(group, outcomes)], traces)

    async def _record(self, outcomes: list[tuple[str, int, ChannelResult | ChannelError]], traces: dict[str, str | None]) -> None:
        """The outcomes of sends, in one transaction: sent/delivered, retry with backoff, or failed for good. Tracing on,
        a NotificationSent or NotificationFailed carries its message's trace."""
        now = self.clock.now()
        events: list[EventEnvelope] = []
        async with self.db.transaction() as session:
            messages = {}
            for ids in directory.chunks([message_id for message_id, _attempt, _outcome in outcomes]):
                messages.update({m.id: m for m in (await session.scalars(select(Message).where(Message.id.in_(ids)))).all()})
            for message_id, attempt, outcome in outcomes:
                message = messages[message_id]
                if isinstance(outcome, ChannelError):
                    event = self._failed(session, message, attempt, outcome, now)
                else:
                    event = self._succeeded(session, message, attempt, outcome, now)
                if event is not None:
                    events.append(event)
            await _write_logs(session)
            by_customer = {messages[message_id].customer_id: traces.get(message_id) for message_id, _attempt, _outcome in outcomes}
            await add_to_outbox(session, events, traces=by_customer)
        if events:
            self.on_commit()

    def _succeeded(self, session, message: Message, attempt: int, result: ChannelResult, now: dt.datetime) -> EventEnvelope:
        message.sent_at = now
        message.provider_id = result.provider_id
        message.last_error = None
        self._set(
            session,
            message,
            DELIVERED if result.status == DELIVERED else SENT,
            now,
            detail=f"{message.channel} accepted (attempt {attempt})",
        )
        return _event(
            NotificationSent(
                notification_id=message.id,
                customer_id=message.customer_id,
                contact_id=message.contact_id,
                channel=message.channel,
                template=message.template_key,
                rule=message.rule_name,
                sent_at=now,
            ),
            message.customer_id,
        )

    def _failed(self, session, message: Message, attempt: int, error: ChannelError, now: dt.datetime) -> EventEnvelope | None:
        if message.status == SUPPRESSED and message.reason == erasure.ERASED_REASON:
            # the person was erased while this send was in flight: no retry, and the error (it may quote the
            # address) is not kept
            _log(
                session,
                message_id=message.id,
                customer_id=message.customer_id,
                attempt=attempt,
                status=SUPPRESSED,
                detail=f"attempt {attempt} failed after the contact was erased; not retried",
                at=now,
            )
            return None
        message.last_error = str(error)[:2000]
        policy = self.policy(message.channel)
        if error.transient and attempt < policy.max_attempts:
            retry_at = now + backoff(policy, attempt)
            self._set(
                session,
                message,
                DEFERRED,
                now,
                reason=reasons.Reason("delivery.retry", attempt=attempt, max_attempts=policy.max_attempts, error=str(error)),
                next_attempt_at=retry_at,
                detail=f"attempt {attempt} failed: {error}; next at {retry_at.isoformat()}",
            )
            log.warning("message %s attempt %d failed, retry at %s: %s", message.id, attempt, retry_at, error)
            return None
        self._set(session, message, FAILED, now, reason=str(error)[:500], detail=f"attempt {attempt} failed for good: {error}")
        return self._failed_event(message, str(error), now)

    @staticmethod
    def _failed_event(message: Message, error: str, now: dt.datetime) -> EventEnvelope:
        return _event(
            NotificationFailed(
                notification_id=message.id,
                customer_id=message.customer_id,
                contact_id=message.contact_id,
                channel=message.channel,
                template=message.template_key,
                rule=message.rule_name,
                error=error[:2000],
                attempts=message.attempts,
                failed_at=now,
            ),
            message.customer_id,
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
                except TimeoutError:
                    pass


_LOGS = "nf_attempt_rows"  # session.info key: delivery-log rows of this transaction, inserted together


def _reason(reason: str | None) -> dict:
    """The reason columns of a message: the English text (reasons.MAX_TEXT at most), its key and parameters."""
    return {"reason": reason[: reasons.MAX_TEXT] if reason is not None else None, **reasons.columns(reason)}


def _set_reason(message: Message, reason: str | None) -> None:
    for column, value in _reason(reason).items():
        setattr(message, column, value)


def _log(session, **row) -> None:
    """A delivery-log row, written with the others at the end of the transaction (every row has the same columns)."""
    session.info.setdefault(_LOGS, []).append({**row, **reasons.columns(row.get("detail"), "detail")})


async def _write_logs(session) -> None:
    rows = session.info.pop(_LOGS, None)
    if rows:
        await session.flush()  # the messages' new states first (the log follows them)
        await session.execute(insert(Attempt.__table__), rows)


def _event(payload, customer_id: str) -> EventEnvelope:
    """What `crm_common.outbox.emit` stages, built here so a batch goes to the outbox in one insert."""
    return make_event(payload, key=customer_id, producer=SERVICE_NAME, correlation_id=current_correlation_id())


@dataclass
class BatchFacts:
    customers: dict[str, CustomerRecord]
    views: dict[str, ContactView]  # contact id -> view (customer erasure not applied)
    erased_addresses: set[str]  # ids of messages without a contact whose address is an erased person's
    sent: dict[str, tuple[int, int]]  # recipient key -> sent in the last day / week (capped categories)
    items: dict[str, list[dict]]  # message id -> the variables of its notifications, oldest first
    templates: dict[tuple[str, str], Any]  # (key, language) -> current version, filled on first use
    events: list[EventEnvelope]  # NotificationFailed of messages that could not be rendered
