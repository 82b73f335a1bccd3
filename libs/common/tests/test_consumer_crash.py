"""A consumer killed with SIGKILL mid-batch and restarted loses nothing and applies nothing twice."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from common_support import applied_count, applied_rows, order_event

from crm_common.bus import KafkaPublisher
from crm_common.events import encode_envelope
from crm_devbroker.testing import wait_until

SCRIPT = Path(__file__).with_name("consumer_process.py")
EVENTS = 3000


def _spawn(db_url, kafka_settings):
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), db_url, kafka_settings.bootstrap_servers, kafka_settings.topic_prefix, "g-killable"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def test_kill_9_mid_batch_then_restart_loses_nothing(messaging_db, kafka_settings):
    publisher = KafkaPublisher(kafka_settings, client_id="test")
    sent = [order_event(f"k{i}", customer_id=f"c{i % 37}") for i in range(EVENTS)]
    futures = [await publisher.send("logistics.orders", e.key, encode_envelope(e)) for e in sent]
    await asyncio.gather(*futures)
    await publisher.stop()

    first = _spawn(messaging_db.url, kafka_settings)
    try:
        await wait_until(lambda: _at_least(messaging_db, 400), timeout_s=60, interval_s=0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    applied_when_killed = await applied_count(messaging_db)
    assert applied_when_killed < EVENTS, "the consumer finished before it could be killed; the test proves nothing"

    second = _spawn(messaging_db.url, kafka_settings)
    try:
        await wait_until(lambda: _at_least(messaging_db, EVENTS), timeout_s=90, interval_s=0.2)
        await asyncio.sleep(1.0)  # anything re-read after the restart would show up as an extra row now
    finally:
        second.terminate()
        second.wait(10)
    rows = await applied_rows(messaging_db)
    assert len(rows) == EVENTS, f"{len(rows) - EVENTS} double-applied"
    assert {r.event_id for r in rows} == {str(e.event_id) for e in sent}


async def _at_least(db, n):
    return await applied_count(db) >= n
