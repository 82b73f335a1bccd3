"""The promises of docs/reliability.md, each proven against the real broker and both databases."""

import asyncio
import time

import pytest

import crm_common.outbox as outbox_module
from crm_common.bus import KafkaPublisher
from crm_common.consumer import Delivery, InboxProcessor
from crm_common.db import Database
from crm_common.outbox import OutboxRelay
from crm_devbroker.testing import TcpProxy, app_client, migrated_database, read_events, read_raw, wait_until
from reliability_support import count_rows, new_customer_body, outbox_state, profile_app


async def test_promise_1_fault_between_business_row_and_outbox_row_leaves_neither(profile_db_url, profile_db, kafka_settings, monkeypatch):
    async def broken_outbox(session, envelopes, topic=None):
        raise RuntimeError("injected fault: the outbox insert failed")

    app = profile_app(profile_db_url, kafka_settings, run_outbox_relay=False, run_consumers=False)
    async with app_client(app) as client:
        ok = await client.post("/customers", json=new_customer_body("Before"))
        assert ok.status_code == 201
        monkeypatch.setattr(outbox_module, "add_to_outbox", broken_outbox)
        failed = await client.post("/customers", json=new_customer_body("Faulty"))
        assert failed.status_code == 500 and failed.headers["content-type"] == "application/problem+json"
    assert await count_rows(profile_db, "customers") == 1
    pending, ids = await outbox_state(profile_db)
    assert pending == 1 and len(ids) == 1


class _CrashBeforeMark(OutboxRelay):
    """Publishes, then dies before recording that it did."""

    async def _mark(self, sent_ids, failed_id, error):
        raise ConnectionError("injected crash after publish, before mark-sent")


class _CountingHandler:
    name = "reliability-counter"
    topics = ("crm.customers",)
    event_types = frozenset({"CustomerRegistered"})

    def __init__(self):
        self.applied: list[str] = []

    async def handle(self, session, event):
        self.applied.append(str(event.envelope.event_id))


async def test_promise_3_relay_crash_after_publish_gives_a_duplicate_never_a_loss(profile_db_url, profile_db, kafka_settings):
    app = profile_app(profile_db_url, kafka_settings, run_outbox_relay=False, run_consumers=False)
    async with app_client(app) as client:
        for i in range(5):
            assert (await client.post("/customers", json=new_customer_body(f"Dup{i}"))).status_code == 201
    publisher = KafkaPublisher(kafka_settings, client_id="relay-test")
    with pytest.raises(ConnectionError):
        await _CrashBeforeMark(profile_db, publisher, service="test").publish_pending()
    pending, accepted = await outbox_state(profile_db)
    assert pending == 5  # nothing marked: the restarted relay sends everything again
    await OutboxRelay(profile_db, publisher, service="test").drain()
    await publisher.stop()
    assert (await outbox_state(profile_db))[0] == 0

    records = await read_raw(kafka_settings, "crm.customers", count=10)
    assert len(records) == 10  # every event twice on the topic
    handler = _CountingHandler()
    processor = InboxProcessor(profile_db, handler, publisher)
    await processor.process([Delivery(r.topic, r.partition, r.offset, r.key, r.value) for r in records])
    assert sorted(handler.applied) == sorted(accepted)  # each applied exactly once


async def test_promise_7_database_connection_loss_fails_fast_with_503_and_recovers(database_factory, kafka_settings, postgres_available):
    if not postgres_available:
        pytest.skip("needs PostgreSQL")
    from crm_devbroker.testing import postgres_admin_url
    from reliability_support import ALEMBIC_INI

    direct_url = await migrated_database(database_factory, "postgres", ALEMBIC_INI, "proxy")
    host_port = direct_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    proxy = await TcpProxy(host, int(port)).start()
    proxied_url = direct_url.replace(host_port, f"127.0.0.1:{proxy.port}")
    app = profile_app(proxied_url, kafka_settings, run_outbox_relay=False, run_consumers=False)
    created = 0
    try:
        async with app_client(app) as client:
            assert (await client.post("/customers", json=new_customer_body("Up"))).status_code == 201
            created += 1
            proxy.refusing = True
            proxy.drop_connections()
            for _ in range(3):
                started = time.monotonic()
                response = await client.post("/customers", json=new_customer_body("Down"))
                assert response.status_code == 503, response.text
                assert response.json()["status"] == 503 and "Retry-After" in response.headers
                assert time.monotonic() - started < 10
            proxy.refusing = False
            response = await client.post("/customers", json=new_customer_body("Back"))
            assert response.status_code == 201, response.text
            created += 1
    finally:
        await proxy.stop()
    db = Database(direct_url)
    try:
        assert await count_rows(db, "customers") == created  # no half-written rows
        assert await count_rows(db, "outbox") == created
    finally:
        await db.dispose()
    del postgres_admin_url


@pytest.mark.slow
async def test_promise_2_broker_paused_30s_while_clients_write(profile_db_url, profile_db, kafka_settings, local_broker):
    if local_broker is None:
        pytest.skip("needs the broker this test session started")
    app = profile_app(profile_db_url, kafka_settings, run_consumers=False)
    statuses: list[int] = []
    async with app_client(app) as client:

        async def writer(seconds: float):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                statuses.append((await client.post("/customers", json=new_customer_body("Outage"))).status_code)
                await asyncio.sleep(0.05)

        await writer(2)
        local_broker.pause()
        try:
            await writer(30)
            assert (await outbox_state(profile_db))[0] > 0  # the outbox holds what the broker cannot take
        finally:
            local_broker.resume()
        await writer(2)
        await wait_until(lambda: _drained(profile_db), timeout_s=60)
    assert statuses and set(statuses) == {201}
    _, accepted = await outbox_state(profile_db)
    assert len(accepted) == len(statuses)
    events = await read_events(kafka_settings, "crm.customers", count=len(accepted), timeout_s=30)
    assert {str(e.event_id) for e in events} == accepted


async def _drained(db):
    return (await outbox_state(db))[0] == 0
