"""A month that missed its agreed service levels (scoring's ServiceLevelBreached) becomes a task for the account manager."""

from __future__ import annotations

from sqlalchemy import select

from crm_common.events.scoring import ServiceLevelBreached
from crm_notifications.delivery.models import InboxTask
from notifications_support import T0, EventFeeder, customer_registered, event


async def test_a_breach_is_a_task_for_the_account_manager_only(nf_sqlite):
    nf = nf_sqlite
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered(
            "sl1", [{"contact_id": "ksl1", "name": "Zhao", "email": "zhao@example.com", "language": "en"}], account_manager="am.li"
        )
    )
    missed = [{"measure": "on_time_delivery_pct", "target": 95.0, "actual": 82.5}]
    await feeder.feed(
        event(
            ServiceLevelBreached(
                customer_id="sl1",
                month="2026-11",
                tier="key_account",
                missed=missed,
                summary="on_time_delivery_pct 82.5 (target >= 95)",
                detected_at=T0,
            )
        )
    )
    await nf.dispatcher.run_once()
    async with nf.db.sessions() as session:
        tasks = (await session.scalars(select(InboxTask).where(InboxTask.customer_id == "sl1"))).all()
    assert [(t.assignee, t.title) for t in tasks] == [("am.li", "服务水平未达标（2026-11）：Customer sl1")]
    assert "on_time_delivery_pct 82.5 (target >= 95)" in tasks[0].body
