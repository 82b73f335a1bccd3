"""The inbox handler: any arrival order and duplicates give the in-order scores; bad input; merge; erase."""

import random

import pytest
from sqlalchemy import func, select

from crm_common.events.customers import CustomerErased, CustomerMerged
from crm_common.events.logistics import OrderCreated, OrderShipped
from crm_scoring.scoring.models import customer_scores, customers, erased_customers, orders
from crm_scoring.scoring.service import recompute_population
from scoring_support import (
    AS_OF,
    deliveries,
    event,
    fact_snapshot,
    feed,
    history,
    processor,
    score_snapshot,
    scoring_db,
    settings_for,
)


async def test_shuffled_and_duplicated_events_give_the_in_order_scores(database_factory, db_kind):
    events = history()
    assert len(events) > 1000
    in_order = await scoring_db(database_factory, db_kind, "inorder")
    shuffled = await scoring_db(database_factory, db_kind, "shuffled")
    try:
        proc, dead = processor(in_order)
        await feed(proc, events, batch_sizes=(100,))
        rng = random.Random(17)
        messy = events + rng.sample(events, len(events) // 2)  # half of them twice
        rng.shuffle(messy)
        proc2, dead2 = processor(shuffled)
        await feed(proc2, messy, batch_sizes=(1, 30, 150, 400), rng=rng)
        assert dead.sent == [] and dead2.sent == []

        assert await fact_snapshot(in_order) == await fact_snapshot(shuffled)
        first, second = await score_snapshot(in_order), await score_snapshot(shuffled)
        assert first == second
        assert len(first) == 22  # 24 customers, one merged away, one erased

        settings = settings_for()
        for db in (in_order, shuffled):
            async with db.transaction() as session:
                await recompute_population(session, settings, AS_OF)
        first, second = await score_snapshot(in_order), await score_snapshot(shuffled)
        assert first == second
        assert {s["abc_class"] for s in first.values()} >= {"A", "D"}
        assert all(s["rfm_segment"] for s in first.values())
        assert any(s["p_alive"] is not None and s["p_alive"] < 0.5 for s in first.values())
    finally:
        await in_order.dispose()
        await shuffled.dispose()


async def test_merge_moves_history_and_erase_removes_it(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind)
    try:
        proc, dead = processor(db)
        ev = []
        for cid, n in (("keep", 3), ("gone", 2), ("forget", 2)):
            for i in range(n):
                ev.append(
                    event(
                        OrderCreated(
                            order_id=f"{cid}-{i}", customer_id=cid, order_date=AS_OF.replace(month=i + 1, day=15), amount=100 * (i + 1)
                        ),
                        cid,
                    )
                )
        await feed(proc, ev)
        merge = event(CustomerMerged(survivor_id="keep", merged_id="gone", merged_at=AS_OF), "keep")
        erase = event(CustomerErased(customer_id="forget", erased_at=AS_OF), "forget")
        late = event(OrderShipped(order_id="gone-9", customer_id="gone", shipped_at=AS_OF), "gone")  # arrives after the merge
        late_created = event(
            OrderCreated(order_id="gone-9", customer_id="gone", order_date=AS_OF.replace(month=5, day=15), amount=50), "gone"
        )
        late_erased = event(
            OrderCreated(order_id="forget-9", customer_id="forget", order_date=AS_OF.replace(month=5, day=15), amount=50), "forget"
        )
        await feed(proc, [merge, erase, late, late_created, late_erased])
        assert dead.sent == []
        async with db.sessions() as session:
            owners = dict((await session.execute(select(orders.c.order_id, orders.c.customer_id))).all())
            scores = {r.customer_id: r for r in (await session.execute(select(customer_scores))).all()}
            known = set((await session.execute(select(customers.c.customer_id))).scalars())
            tombstones = set((await session.execute(select(erased_customers.c.customer_id))).scalars())
        assert {o for o, c in owners.items() if c == "keep"} == {"keep-0", "keep-1", "keep-2", "gone-0", "gone-1", "gone-9"}
        assert not any(c in ("gone", "forget") for c in owners.values())
        assert set(scores) == {"keep"} and known == {"keep"} and tombstones == {"forget"}
        assert scores["keep"].revenue_12m == pytest.approx(100 + 200 + 300 + 100 + 200 + 50)
    finally:
        await db.dispose()


def _tampered(envelope, old: bytes, new: bytes, offset: int):
    """The envelope's delivery with its bytes edited: what a producer that skips the schema could publish."""
    delivery = deliveries([envelope])[0]
    assert old in delivery.value
    return type(delivery)(delivery.topic, 0, offset, delivery.key, delivery.value.replace(old, new))


async def test_unknown_customer_gets_a_stub_and_foreign_currency_is_dead_lettered(database_factory):
    db = await scoring_db(database_factory, "sqlite")
    try:
        proc, dead = processor(db, max_attempts=1)
        good = event(OrderCreated(order_id="o1", customer_id="new-one", order_date=AS_OF, amount=10), "new-one")
        foreign = _tampered(
            event(OrderCreated(order_id="o2", customer_id="new-one", order_date=AS_OF, amount=10), "new-one"),
            b'"currency":"CNY"',
            b'"currency":"USD"',
            1,
        )
        await proc.process(deliveries([good]) + [foreign])
        assert len(dead.sent) == 1
        topic, key, _, headers = dead.sent[0]
        assert topic == "logistics.orders.dlq" and key == "new-one"
        assert b"currency USD is not accepted" in headers["dlq.error"]
        assert headers["dlq.error_type"] == b"InvalidEvent"
        # a negative amount fails the payload schema and goes to the DLQ at once
        bad = event(OrderCreated(order_id="o3", customer_id="new-one", order_date=AS_OF, amount=10), "new-one")
        await proc.process([_tampered(bad, b'"amount":"10.00"', b'"amount":"-10"', 99)])
        assert len(dead.sent) == 2 and b"amount" in dead.sent[1][3]["dlq.error"]
        await proc.handler.rescore_dirty(db)
        async with db.sessions() as session:
            stub = (await session.execute(select(customers).where(customers.c.customer_id == "new-one"))).one()
            assert stub.is_stub == 1 and stub.name is None
            assert await session.scalar(select(func.count()).select_from(orders)) == 1
            score = (await session.execute(select(customer_scores).where(customer_scores.c.customer_id == "new-one"))).one()
            assert score.orders_12m == 1 and score.tier == "small"
    finally:
        await db.dispose()


async def test_consumer_marks_customers_and_rescoring_catches_up(database_factory, db_kind, monkeypatch):
    """The consumer stores facts and marks customers; rescoring scores the marked ones. A customer whose
    events commit while a rescoring pass is under way stays marked and is scored again by the next pass."""
    from crm_scoring.scoring import service
    from crm_scoring.scoring.models import rescore_queue

    db = await scoring_db(database_factory, db_kind, "queue")
    try:
        proc, dead = processor(db)

        def order(cid, n, amount):
            return event(
                OrderCreated(order_id=f"{cid}-{n}", customer_id=cid, order_date=AS_OF.replace(month=n, day=10), amount=amount), cid
            )

        async def queue():
            async with db.sessions() as session:
                return dict((await session.execute(select(rescore_queue.c.customer_id, rescore_queue.c.seq))).all())

        async def scores():
            async with db.sessions() as session:
                return {r.customer_id: r for r in (await session.execute(select(customer_scores))).all()}

        await proc.process(deliveries([order("a", 1, 100), order("a", 2, 200), order("b", 1, 50)]))
        assert await queue() == {"a": 1, "b": 1}
        assert await scores() == {}  # ingestion alone scores nobody
        await proc.process(deliveries([order("a", 3, 300)], start_offset=3))
        assert await queue() == {"a": 2, "b": 1}

        real_rescore = service.rescore
        late = [order("b", 2, 70)]

        async def rescore_while_an_event_commits(session, ids, *args, **kwargs):
            if late:  # another transaction commits a new fact for b after the pass read the marks
                await proc.process(deliveries([late.pop()], start_offset=10))
            return await real_rescore(session, ids, *args, **kwargs)

        if db_kind == "postgres":
            monkeypatch.setattr(service, "rescore", rescore_while_an_event_commits)
            assert await proc.handler.rescore_dirty(db) == 2
            assert set(await queue()) == {"b"}  # its seq moved on: still marked
        else:  # SQLite: a pass holds the write lock, so the event commits before or after it, never during
            assert await proc.handler.rescore_dirty(db) == 2
            assert await queue() == {}
            await proc.process(deliveries(late, start_offset=10))
            assert await queue() == {"b": 1}
        first = await scores()
        assert first["a"].orders_12m == 3 and first["a"].revenue_12m == pytest.approx(600)
        assert await proc.handler.rescore_dirty(db) == 1
        assert await queue() == {}
        second = await scores()
        assert second["b"].orders_12m == 2 and second["b"].revenue_12m == pytest.approx(120)
        assert dead.sent == []
    finally:
        await db.dispose()
