"""An offer sent from a win-back case (customer-profile's WinBackOfferMade) reaches the lost customer's contacts by
email, each in their own language, with the offer's words, discount and last day."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from crm_common.events.customers import WinBackOfferMade
from crm_notifications.delivery.models import Message
from notifications_support import T0, EventFeeder, customer_registered, event


def _offer(customer_id: str) -> WinBackOfferMade:
    return WinBackOfferMade(
        customer_id=customer_id,
        case_id=f"case-{customer_id}",
        offer_id=f"offer-{customer_id}",
        account_manager="am.qian",
        made_by="am.qian",
        summary="guaranteed capacity in November",
        discount_percent=5,
        valid_until=dt.date(2026, 4, 30),
        made_at=T0,
    )


async def test_the_offer_is_emailed_to_each_contact_in_its_language(nf_sqlite):
    nf = nf_sqlite
    feeder = EventFeeder(nf)
    contacts = [
        {"contact_id": "wbo-zh", "name": "钱先生", "email": "wbo-zh@example.com", "language": "zh-CN", "marketing_consent": True},
        {"contact_id": "wbo-en", "name": "Ann Lee", "email": "wbo-en@example.com", "language": "en", "marketing_consent": True},
    ]
    await feeder.feed(customer_registered("wbo1", contacts, account_manager="am.qian"))
    await feeder.feed(event(_offer("wbo1")))
    await nf.dispatcher.run_once()
    async with nf.db.sessions() as session:
        emails = (await session.scalars(select(Message).where(Message.customer_id == "wbo1", Message.channel == "email"))).all()
    by_contact = {m.contact_id: m for m in emails}
    assert sorted(by_contact) == ["wbo-en", "wbo-zh"] and {m.category for m in emails} == {"win_back"}
    assert by_contact["wbo-en"].subject == "Customer wbo1: an offer for you"
    assert "guaranteed capacity in November (5% off)" in by_contact["wbo-en"].body and "2026-04-30" in by_contact["wbo-en"].body
    assert "（优惠 5%）" in by_contact["wbo-zh"].body and "有效期至 2026-04-30" in by_contact["wbo-zh"].body
