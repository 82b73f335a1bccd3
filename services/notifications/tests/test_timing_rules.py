"""The timing table of docs/notifications.md ("Timing rules and their boundaries"), one test per row, through the real
pipeline and dispatcher with a manual clock."""

import datetime as dt
import uuid

from sqlalchemy import select

from crm_common.events.complaints import ComplaintFiled
from crm_common.events.logistics import ShipmentDelayed
from crm_notifications.channels.base import ChannelError, ChannelResult
from crm_notifications.delivery import pipeline
from crm_notifications.delivery.models import Attempt, Message, Notification
from crm_notifications.directory import service as directory
from crm_notifications.preferences.policy import quiet_hours_end
from notifications_support import T0, EventFeeder, customer_registered, event, new_id

UTC = dt.UTC
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


async def register(nf, **contact) -> None:
    fields = {"contact_id": "k1", "name": "Ada", "email": "ada@example.com", "language": "en", **contact}
    await EventFeeder(nf).feed(customer_registered("c1", [fields]))


async def queue(nf, *, urgency: str = "normal", category: str = "shipment_status", occurred: dt.datetime | None = None) -> str:
    """One message to contact k1 through the real pipeline (`enqueue`), as a rule of that category and urgency would."""
    spec = pipeline.Spec(f"timing-{urgency}-{category}", "timing", "shipment_lost", "customer_contacts", "email", category, urgency)
    trigger = pipeline.Trigger(
        str(uuid.uuid4()), "ShipmentLost", "c1", {"customer_id": "c1", "order_id": new_id(), "tracking_number": "SF1"}, occurred
    )
    async with nf.transaction() as session:
        customer = await directory.customer(session, "c1")
        [recipient] = await pipeline.recipients(session, spec, trigger, customer)
        values = pipeline.variables(trigger, customer, recipient, survey_base_url="")
        message = await pipeline.enqueue(session, spec, trigger, recipient, values, nf.clock.now())
    return message.id


async def state(nf, message_id: str) -> tuple[str, str | None]:
    async with nf.db.sessions() as session:
        message = await session.get(Message, message_id)
        return message.status, message.reason


async def queue_and_dispatch(nf, **kw) -> tuple[str, str | None]:
    message_id = await queue(nf, **kw)
    await nf.dispatcher.run_once()
    return await state(nf, message_id)


def cap_reason(count: int, cap: int, per: str) -> tuple[str, str]:
    return "suppressed", f"frequency cap: {count} of {cap} per {per} already sent"


# quiet hours ------------------------------------------------------------------------------------------------------------


def test_quiet_hours_include_their_start_and_exclude_their_end():
    quiet = dict(timezone="Asia/Shanghai", start=dt.time(22, 0), end=dt.time(8, 0))
    assert quiet_hours_end(dt.datetime(2026, 3, 2, 13, 59, 59, tzinfo=UTC), **quiet) is None  # 21:59:59
    assert quiet_hours_end(dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC), **quiet) == dt.datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 22:00
    assert quiet_hours_end(dt.datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=UTC), **quiet) == dt.datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    assert quiet_hours_end(dt.datetime(2026, 3, 3, 0, 0, tzinfo=UTC), **quiet) is None  # 08:00


async def test_a_message_in_the_repeated_hour_is_deferred_once_and_goes_when_the_clock_reads_the_end(nf, smtp, clock):
    await register(nf, timezone="America/New_York", quiet_hours_start="22:00", quiet_hours_end="01:30")
    clock.set(dt.datetime(2026, 11, 1, 6, 10, tzinfo=UTC))  # 01:10 EST, the second 01:10 of the night
    await EventFeeder(nf).feed(
        event(
            ComplaintFiled(
                complaint_id=new_id(),
                complaint_number="CP-1",
                customer_id="c1",
                category="delay",
                priority="P2",
                channel="web",
                contact_id="k1",
                filed_at=T0,
            )
        )
    )
    assert [await nf.dispatcher.run_once() for _ in range(5)] == [1, 0, 0, 0, 0]  # five passes at the same instant
    async with nf.db.sessions() as session:
        [message] = (await session.scalars(select(Message))).all()
        assert message.next_attempt_at == dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    clock.set(dt.datetime(2026, 11, 1, 6, 29, 59, tzinfo=UTC))
    assert await nf.dispatcher.run_once() == 0
    clock.set(dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC))  # due at next_attempt_at itself
    assert await nf.dispatcher.run_once() == 1
    async with nf.db.sessions() as session:
        log = (await session.scalars(select(Attempt.status).where(Attempt.message_id == message.id).order_by(Attempt.id))).all()
    assert log == ["queued", "deferred", "sending", "sent"]
    assert len(smtp.messages) == 1


# digests --------------------------------------------------------------------------------------------------------------


async def test_a_digest_takes_the_events_of_its_half_open_window_however_late_the_dispatcher(nf, smtp, clock):
    await register(nf)
    feeder = EventFeeder(nf)

    async def delay(order_id: str, at: dt.timedelta) -> None:
        clock.set(T0 + at)
        await feeder.feed(event(ShipmentDelayed(order_id=order_id, customer_id="c1", delay_minutes=60, reported_at=T0)))

    await delay("ORD-1", dt.timedelta(0))  # opens the digest: window [T0, T0 + 15 min)
    await delay("ORD-2", dt.timedelta(seconds=900) - dt.timedelta(microseconds=1))
    await delay("ORD-3", dt.timedelta(seconds=900))  # the window's close: opens the next digest, [T0 + 15, T0 + 30 min)
    await delay("ORD-4", dt.timedelta(minutes=25))  # the dispatcher has not come by; the first digest is closed all the same
    await delay("ORD-5", dt.timedelta(minutes=30))  # a third
    clock.set(T0 + dt.timedelta(hours=1))
    await nf.dispatcher.run_once()
    async with nf.db.sessions() as session:
        rows = (
            await session.execute(
                select(Message.id, Message.status, Notification.variables)
                .join(Notification, Notification.message_id == Message.id)
                .order_by(Message.created_at, Notification.created_at)
            )
        ).all()
    digests: dict[str, list[str]] = {}
    for row in rows:
        assert row.status == "sent"
        digests.setdefault(row.id, []).append(row.variables["order_id"])
    assert list(digests.values()) == [["ORD-1", "ORD-2"], ["ORD-3", "ORD-4"], ["ORD-5"]]
    assert len(smtp.messages) == 3


# frequency caps -------------------------------------------------------------------------------------------------------


async def test_the_daily_cap_counts_sends_of_the_24_hours_before_exactly(nf, clock):
    await register(nf)
    nf.settings.cap_per_day, nf.settings.cap_per_week = 1, 100
    assert await queue_and_dispatch(nf) == ("sent", None)  # at T0
    clock.set(T0 + DAY - SECOND)
    assert await queue_and_dispatch(nf) == cap_reason(1, 1, "day")
    clock.set(T0 + DAY)  # the T0 send is exactly 24 h old: out of the window
    assert await queue_and_dispatch(nf) == ("sent", None)


async def test_the_weekly_cap_counts_sends_of_the_7_days_before_exactly(nf, clock):
    await register(nf)
    nf.settings.cap_per_day, nf.settings.cap_per_week = 100, 1
    assert await queue_and_dispatch(nf) == ("sent", None)
    clock.set(T0 + 7 * DAY - SECOND)
    assert await queue_and_dispatch(nf) == cap_reason(1, 1, "week")
    clock.set(T0 + 7 * DAY)
    assert await queue_and_dispatch(nf) == ("sent", None)


async def test_critical_sends_bypass_the_cap_and_count_toward_it(nf):
    await register(nf)
    nf.settings.cap_per_day = 1
    assert await queue_and_dispatch(nf, urgency="critical") == ("sent", None)
    assert await queue_and_dispatch(nf, urgency="critical") == ("sent", None)
    assert await queue_and_dispatch(nf) == cap_reason(2, 1, "day")


class ScriptedEmail:
    """An email channel whose outcome per message is scripted: a list of errors to raise before it accepts."""

    name = "email"

    def __init__(self):
        self.script: dict[str, list[ChannelError]] = {}

    async def send(self, message):
        errors = self.script.get(message.message_id) or []
        if errors:
            raise errors.pop(0)
        return ChannelResult("sent", f"p-{message.message_id}")


async def test_a_retried_send_counts_once_and_a_failed_one_not_at_all(nf, clock):
    await register(nf)
    nf.settings.cap_per_day = 2
    email = nf.dispatcher.channels["email"] = ScriptedEmail()
    retried = await queue(nf)
    email.script[retried] = [ChannelError("451 try later", transient=True), ChannelError("451 try later", transient=True)]
    for _ in range(3):
        await nf.dispatcher.run_once()
        clock.advance(minutes=5)  # past each backoff
    async with nf.db.sessions() as session:
        assert (await session.get(Message, retried)).attempts == 3
    assert await state(nf, retried) == ("sent", None)
    refused = await queue(nf)
    email.script[refused] = [ChannelError("550 no such user", transient=False)]
    await nf.dispatcher.run_once()
    assert await state(nf, refused) == ("failed", "550 no such user")
    assert await queue_and_dispatch(nf) == ("sent", None)  # the retried one counted once, the failed one not
    assert await queue_and_dispatch(nf) == cap_reason(2, 2, "day")


async def test_only_service_and_marketing_sends_count_and_a_digest_counts_once(nf, clock):
    await register(nf)
    nf.settings.cap_per_day = 2
    feeder = EventFeeder(nf)
    await feeder.feed(
        event(
            ComplaintFiled(
                complaint_id=new_id(),
                complaint_number="CP-2",
                customer_id="c1",
                category="delay",
                priority="P2",
                channel="web",
                contact_id="k1",
                filed_at=T0,
            )
        )
    )
    for i in range(3):
        await feeder.feed(event(ShipmentDelayed(order_id=f"ORD-{i}", customer_id="c1", delay_minutes=60, reported_at=T0)))
    clock.advance(seconds=900)
    await nf.dispatcher.run_once()
    async with nf.db.sessions() as session:
        sent = (
            await session.execute(select(Message.category, Message.item_count).where(Message.status == "sent").order_by(Message.category))
        ).all()
    assert [tuple(row) for row in sent] == [("complaint_updates", 1), ("shipment_status", 3)]
    assert await queue_and_dispatch(nf) == ("sent", None)  # the acknowledgement did not count, the digest counted once
    assert await queue_and_dispatch(nf) == cap_reason(2, 2, "day")


# the order of messages due at the same instant -----------------------------------------------------------------------


async def test_messages_due_at_the_same_instant_go_by_priority_then_occurrence_then_id(nf, clock):
    await register(nf)
    nf.settings.cap_per_day = 2
    late = await queue(nf, occurred=T0 - dt.timedelta(minutes=10))
    early = [await queue(nf, occurred=T0 - dt.timedelta(minutes=20)) for _ in range(2)]
    critical = await queue(nf, urgency="critical", occurred=T0 - dt.timedelta(minutes=1))
    first, second = sorted(early)
    assert await nf.dispatcher.due_ids(clock.now()) == [critical, first, second, late]
    nf.settings.dispatcher_batch_size = 2  # the batch is cut in that order too, in the database
    assert await nf.dispatcher.due_ids(clock.now()) == [critical, first]
    nf.settings.dispatcher_batch_size = 100
    await nf.dispatcher.run_once()
    assert [await state(nf, m) for m in (critical, first, second, late)] == [
        ("sent", None),
        ("sent", None),
        cap_reason(2, 2, "day"),
        cap_reason(2, 2, "day"),
    ]


def test_an_event_time_without_an_offset_is_read_as_utc():
    envelope = event(ShipmentDelayed(order_id="o", customer_id="c1", delay_minutes=5, reported_at=T0))
    naive = envelope.model_copy(update={"occurred_at": dt.datetime(2026, 3, 2, 2, 0)})
    trigger = pipeline.trigger_from_event(naive, naive.parsed())
    assert trigger.occurred_at == dt.datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
