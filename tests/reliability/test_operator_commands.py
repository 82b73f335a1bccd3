"""The operator commands on real services' databases and the real broker: `crm-outbox replay` over a time
range, `crm-dlq list|show|replay` on dead letters that outlive the broker. Business state is counted."""

import asyncio
import datetime as dt
import json
import uuid

from sqlalchemy import func, select, update

from crm_common import dlq, outbox_replay
from crm_common.bus import ensure_topics
from crm_common.consumer import Delivery
from crm_common.db import utcnow
from crm_common.events.logistics import OrderCreated
from crm_common.events.topics import ALL_TOPICS
from crm_common.outbox import outbox_table
from crm_devbroker.testing import app_client, read_raw
from crm_scoring.scoring.models import customers as scoring_customers
from crm_scoring.scoring.models import orders as scoring_orders
from reliability_support import new_customer_body, profile_app
from scoring_support import AS_OF, deliveries, event, processor, scoring_db

# The commands are synchronous programs (asyncio.run inside): the tests run them in a thread.
HOURS_AGO = [30, 20, 10, 5, 1]  # when each customer was registered


def _environment(monkeypatch, kafka_settings, **service_urls):
    """What the commands read: the service's database URL and the KAFKA_* settings."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
    for prefix, url in service_urls.items():
        monkeypatch.setenv(f"{prefix}_DATABASE_URL", url)


async def test_crm_outbox_replay_feeds_a_time_range_to_a_new_read_model(
    profile_db_url, profile_db, kafka_settings, database_factory, db_kind, monkeypatch, capsys
):
    app = profile_app(profile_db_url, kafka_settings, run_consumers=False)
    async with app_client(app) as client:
        ids = []
        for hours in HOURS_AGO:
            response = await client.post("/customers", json=new_customer_body(f"Registered {hours}h ago"))
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        await app.state.runtime.relay.drain()
    async with profile_db.transaction() as session:  # backdate: customer i was written HOURS_AGO[i] hours ago
        for customer_id, hours in zip(ids, HOURS_AGO):
            await session.execute(
                update(outbox_table).where(outbox_table.c.key == customer_id).values(created_at=utcnow() - dt.timedelta(hours=hours))
            )

    # the new read model listens on a cluster (here: a topic prefix) that never saw these events
    new_cluster = kafka_settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:8]}."})
    await ensure_topics(new_cluster, ALL_TOPICS)
    _environment(monkeypatch, new_cluster, PROFILE=profile_db_url)
    assert (
        await asyncio.to_thread(
            outbox_replay.main, ["replay", "--service", "customer-profile", "--since", "25h", "--until", "3h", "--topic", "crm.customers"]
        )
        == 0
    )
    assert "replayed 3 event(s) to crm.customers" in capsys.readouterr().out  # registered 20, 10 and 5 hours ago

    records = await read_raw(new_cluster, "crm.customers", count=4, timeout_s=5)
    read_model = await scoring_db(database_factory, db_kind, "readmodel")
    try:
        scoring, dead = processor(read_model)
        await scoring.process(_deliveries(records))
        await scoring.process(_deliveries(records))  # the same events again change nothing
        assert dead.sent == []
        async with read_model.sessions() as session:
            known = set((await session.execute(select(scoring_customers.c.customer_id))).scalars())
    finally:
        await read_model.dispose()
    assert known == set(ids[1:4])


def _deliveries(records):
    return [Delivery(r.topic, r.partition, r.offset, r.key, r.value) for r in records]


async def _scoring_is_read_only(self, session, events):
    raise RuntimeError("injected fault: the scoring database is read-only for maintenance")


async def test_dead_letters_outlive_the_broker_and_crm_dlq_replays_them_once(
    database_factory, db_kind, kafka_settings, local_broker, monkeypatch, capsys
):
    from crm_scoring.scoring.handlers import ScoringHandler

    monkeypatch.setattr(ScoringHandler, "handle_batch", _scoring_is_read_only)
    db = await scoring_db(database_factory, db_kind, "dlq")
    try:
        proc, dead = processor(db, max_attempts=1)
        order = event(OrderCreated(order_id="o-41", customer_id="importer", order_date=AS_OF, amount=10), "importer")
        await proc.process(deliveries([order]))
        assert len(dead.sent) == 1  # on its way to the .dlq topic, which a broker that forgets will lose
    finally:
        await db.dispose()
    if local_broker is not None:  # a broker that forgets: stopped and started empty
        local_broker.stop()
        local_broker.start()
        await ensure_topics(kafka_settings, ALL_TOPICS)

    _environment(monkeypatch, kafka_settings, SCORING=db.url)
    assert await asyncio.to_thread(dlq.main, ["list", "--service", "scoring"]) == 0
    (waiting,) = json.loads(capsys.readouterr().out)
    assert waiting["consumer"] == "scoring" and waiting["error_type"] == "RuntimeError" and waiting["event_id"] == str(order.event_id)
    assert await asyncio.to_thread(dlq.main, ["show", "--service", "scoring", str(waiting["id"])]) == 0
    assert json.loads(capsys.readouterr().out)["event"]["payload"]["order_id"] == "o-41"

    assert await asyncio.to_thread(dlq.main, ["replay", "--service", "scoring"]) == 1  # not fixed yet: still waiting
    assert json.loads(capsys.readouterr().out)["failed"][0]["outcome"] == "failed"
    monkeypatch.undo()  # the fix: the database is writable again
    _environment(monkeypatch, kafka_settings, SCORING=db.url)
    assert await asyncio.to_thread(dlq.main, ["replay", "--service", "scoring"]) == 0
    assert json.loads(capsys.readouterr().out) == {"applied": 1, "already_applied": 0, "failed": []}
    assert await asyncio.to_thread(dlq.main, ["replay", "--service", "scoring", str(waiting["id"])]) == 1  # replayed already: nothing twice
    capsys.readouterr()

    db = type(db)(db.url)
    try:
        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(scoring_orders).where(scoring_orders.c.order_id == "o-41")) == 1
    finally:
        await db.dispose()
