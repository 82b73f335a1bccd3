"""Credit actions per grade, as rules (data): a falling grade warns the account manager and finance at once; grade C
asks the account manager for a shorter payment cycle; grade D a credit review; nothing for a rising grade B."""

from sqlalchemy import select

from crm_common.events.scoring import CreditGradeChanged
from crm_notifications.delivery.models import InboxTask
from crm_notifications.rules.conditions import holds
from notifications_support import T0, EventFeeder, customer_registered, event


def grade_changed(customer_id: str, old: str | None, new: str, actions: list[str], *, falling: bool) -> object:
    return event(
        CreditGradeChanged(
            customer_id=customer_id,
            old_grade=old,
            new_grade=new,
            falling=falling,
            actions=actions,
            review_every_days=30,
            reason=f"{new} (reason)",
            changed_at=T0,
        )
    )


async def _tasks(nf, customer_id: str) -> list[tuple[str, str]]:
    async with nf.db.sessions() as session:
        tasks = (await session.scalars(select(InboxTask).where(InboxTask.customer_id == customer_id))).all()
    return sorted((t.assignee, t.title) for t in tasks)


async def test_a_fall_to_d_warns_the_account_manager_and_finance_and_asks_for_a_review(nf_sqlite):
    nf = nf_sqlite
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered(
            "cr1", [{"contact_id": "kcr1", "name": "Qian", "email": "qian@example.com", "language": "en"}], account_manager="am.zhou"
        )
    )
    await feeder.feed(grade_changed("cr1", "B", "D", ["credit_review_task", "alert_finance"], falling=True))
    await nf.dispatcher.run_once()
    assert await _tasks(nf, "cr1") == [
        ("am.zhou", "【信用下降】Customer cr1：B → D"),
        ("am.zhou", "信用审查：Customer cr1"),
        ("finance", "【信用下降】Customer cr1：B → D"),
    ]  # staff messages are in zh-CN; the finance alert of grade D stays quiet: the fall already told finance


async def test_grade_c_first_seen_alerts_the_account_manager_and_asks_for_a_shorter_cycle(nf_sqlite, smtp):
    nf = nf_sqlite
    feeder = EventFeeder(nf)
    await feeder.feed(
        customer_registered(
            "cr2", [{"contact_id": "kcr2", "name": "Lu", "email": "lu@example.com", "language": "en"}], account_manager="am.he"
        )
    )
    await feeder.feed(grade_changed("cr2", None, "C", ["payment_cycle_reminder", "alert_account_manager"], falling=False))
    await feeder.feed(grade_changed("cr2", "C", "B", [], falling=False))  # rising to B calls for nothing
    await nf.dispatcher.run_once()
    tasks = await _tasks(nf, "cr2")
    assert [a for a, _ in tasks] == ["am.he", "am.he"]
    assert sorted(title for _, title in tasks) == ["信用等级 C：Customer cr2", "缩短付款周期：Customer cr2"]
    assert smtp.messages == []  # internal: nothing reaches the customer's contacts


def test_contains_holds_for_a_list_field_holding_the_value():
    assert holds({"field": "actions", "op": "contains", "value": "alert_finance"}, {"actions": ["credit_review_task", "alert_finance"]})
    assert not holds({"field": "actions", "op": "contains", "value": "alert_finance"}, {"actions": []})
    assert not holds({"field": "actions", "op": "contains", "value": "a"}, {"actions": "abc"})  # a string is not a list
