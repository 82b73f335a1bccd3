"""A worker (run_worker: relay and consumers without the API) serves /healthz, /readyz and /metrics on its own port:
consumer lag, whether each consumer holds its group, the dead letters it wrote, the outbox backlog and its age."""

import asyncio

import httpx
from common_support import RecordingHandler, order_event
from prometheus_client.parser import text_string_to_metric_families

from crm_common.bus import KafkaPublisher
from crm_common.events import encode_envelope
from crm_common.outbox import add_to_outbox
from crm_common.runtime import ServiceRuntime, worker_ops_server
from crm_common.settings import ServiceSettings
from crm_devbroker.broker import free_port
from crm_devbroker.testing import wait_until


class OpsRecorder(RecordingHandler):
    name = "ops-recorder"


def samples(text: str, name: str, **labels: str) -> list[float]:
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


async def test_a_worker_serves_health_readiness_and_its_messaging_metrics(messaging_db, kafka_settings, db_kind):
    service = f"ops-{db_kind}"
    handler = OpsRecorder(fail_order_ids={"poison"})
    handler.name = f"ops-recorder-{db_kind}"  # the registry is per process: labels of this test only
    port = free_port()
    settings = ServiceSettings(
        service_name=service,
        database_url=messaging_db.url,
        kafka=kafka_settings,
        consumer_max_attempts=1,
        run_outbox_relay=False,
        worker_http_host="127.0.0.1",
        worker_http_port=port,
        metrics_refresh_s=0.2,
    )
    runtime = ServiceRuntime(settings, handlers=[handler])
    server = worker_ops_server(runtime)
    serving = asyncio.create_task(server.serve())
    await runtime.start()
    publisher = KafkaPublisher(kafka_settings, client_id="ops-test")
    try:
        events = [order_event("fine-1"), order_event("poison"), order_event("fine-2")]
        await asyncio.gather(*[await publisher.send("logistics.orders", e.key, encode_envelope(e)) for e in events])
        async with messaging_db.transaction() as session:  # no relay runs here: the row waits, and ages
            await add_to_outbox(session, [order_event("waiting-in-the-outbox")])
        await runtime.relay.update_backlog_metric()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}

            async def ready_with_consumers():
                answer = await client.get("/readyz")
                return answer.status_code == 200 and answer.json()["checks"].get("consumers") == "ok"

            await wait_until(ready_with_consumers, timeout_s=60)

            async def dead_lettered():
                text = (await client.get("/metrics")).text
                return samples(text, "crm_dlq_messages_total", consumer=handler.name, topic="logistics.orders") == [1.0] and text

            text = await wait_until(dead_lettered, timeout_s=60)
            assert samples(text, "crm_consumer_up", consumer=handler.name) == [1.0]
            assert sum(samples(text, "crm_consumer_lag", consumer=handler.name, topic="logistics.orders")) == 0
            assert samples(text, "crm_outbox_backlog", service=service) == [1.0]
            assert samples(text, "crm_outbox_oldest_pending_age_seconds", service=service)[0] >= 0

            async def one_waiting_dead_letter():
                return samples((await client.get("/metrics")).text, "crm_dead_letters_waiting", service=service) == [1.0]

            await wait_until(one_waiting_dead_letter, timeout_s=30)

            # a consumer loop that ended (only a bug ends it: it restarts itself on errors) makes the worker not ready
            [consumer_task] = [t for t in runtime._tasks if t.get_name() == f"consumer-{handler.name}"]
            consumer_task.cancel()
            await asyncio.gather(consumer_task, return_exceptions=True)
            answer = await client.get("/readyz")
            assert answer.status_code == 503 and answer.json()["checks"]["consumers"] == "failed"
    finally:
        await publisher.stop()
        await runtime.stop()
        server.should_exit = True
        await serving


def test_a_worker_port_of_zero_serves_nothing():
    settings = ServiceSettings(service_name="ops-off", database_url="sqlite:///:memory:", worker_http_port=0)
    assert worker_ops_server(ServiceRuntime(settings)) is None
