"""`python -m crm_profile.worker`: a replica without HTTP that publishes what the API wrote."""

import asyncio
import os
import signal
import sys

import pytest

from crm_common.db import Database
from crm_devbroker.testing import read_events
from crm_profile.customers import service
from crm_profile.customers.schemas import CustomerCreate
from profile_support import full_body, migrated_database


@pytest.mark.parametrize("kind", ["postgres"])  # the leader path (advisory lock); the relay itself is tested on both
async def test_worker_process_publishes_the_outbox_and_stops_on_sigterm(kind, database_factory, kafka_settings):
    url = await migrated_database(database_factory, kind)
    db = Database(url)
    async with db.transaction() as session:  # written while no relay runs anywhere
        customer = await service.create_customer(session, CustomerCreate.model_validate(full_body()))
    await db.dispose()
    env = os.environ | {
        "PROFILE_DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "PROFILE_LOG_JSON": "false",
        "PROFILE_WORKER_HTTP_PORT": "0",  # the default 9000 may be another process's on a shared machine
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crm_profile.worker", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        events = await read_events(kafka_settings, "crm.customers", count=1, timeout_s=30, predicate=lambda e: e.key == customer.id)
        assert [e.type for e in events] == ["CustomerRegistered"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()[-2000:]
