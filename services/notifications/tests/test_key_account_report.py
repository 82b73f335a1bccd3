"""A key account's monthly service report (customer-profile's KeyAccountReportReady): a task for the account manager; an
email to the customer's contacts only when the customer opted in and the contact subscribes to monthly_service_report."""

from __future__ import annotations

from sqlalchemy import select

from crm_common.events.customers import KeyAccountReportReady
from crm_notifications.delivery.models import InboxTask, Message
from crm_notifications.preferences import service as preferences
from crm_notifications.preferences.schemas import PreferencesIn
from notifications_support import T0, EventFeeder, customer_registered, event


def _ready(customer_id: str, opted_in: bool) -> KeyAccountReportReady:
    return KeyAccountReportReady(
        report_id=f"r-{customer_id}",
        customer_id=customer_id,
        month="2026-11",
        account_manager="am.li",
        customer_opted_in=opted_in,
        key_account_reasons=["class A"],
        summary="2026-11: 12 orders, 34000.00 CNY, all targets met, 0 complaints, 1 visits",
        generated_at=T0,
    )


async def test_the_report_tells_the_manager_and_only_an_opted_in_customer(nf_sqlite):
    nf = nf_sqlite
    feeder = EventFeeder(nf)
    for customer_id, contact_id in (("kar1", "kk1"), ("kar2", "kk2")):
        await feeder.feed(
            customer_registered(
                customer_id,
                [{"contact_id": contact_id, "name": "Zhao", "email": f"{contact_id}@example.com", "language": "en"}],
                account_manager="am.li",
            )
        )
        async with nf.transaction() as session:
            await preferences.update(
                session, contact_id, PreferencesIn.model_validate({"categories": {"monthly_service_report": {"opted_in": True}}})
            )
    await feeder.feed(event(_ready("kar1", True)))
    await feeder.feed(event(_ready("kar2", False)))
    await nf.dispatcher.run_once()
    async with nf.db.sessions() as session:
        tasks = (await session.scalars(select(InboxTask).where(InboxTask.customer_id.in_(["kar1", "kar2"])))).all()
        emails = (await session.scalars(select(Message).where(Message.customer_id.in_(["kar1", "kar2"]), Message.channel == "email"))).all()
    assert sorted((t.customer_id, t.assignee) for t in tasks) == [("kar1", "am.li"), ("kar2", "am.li")]
    assert sorted(t.title for t in tasks) == ["重点客户月度服务报告 2026-11：Customer kar1", "重点客户月度服务报告 2026-11：Customer kar2"]
    assert [(m.customer_id, m.category) for m in emails] == [("kar1", "monthly_service_report")]
    assert "12 orders" in emails[0].body and emails[0].subject == "Customer kar1: your service report for 2026-11"
