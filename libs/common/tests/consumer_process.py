"""A consumer replica in its own process, for kill -9 tests: `python consumer_process.py DB_URL BOOTSTRAP PREFIX GROUP`."""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common_support import RecordingHandler  # noqa: E402

from crm_common.bus import KafkaPublisher  # noqa: E402
from crm_common.consumer import InboxConsumer  # noqa: E402
from crm_common.db import Database  # noqa: E402
from crm_common.settings import KafkaSettings  # noqa: E402


class SlowRecordingHandler(RecordingHandler):
    """Slow enough that a kill lands in the middle of a batch."""

    async def handle(self, session, event):
        await asyncio.sleep(0.001)
        await super().handle(session, event)


async def main(db_url: str, bootstrap: str, prefix: str, group: str) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap, topic_prefix=prefix, consumer_session_timeout_ms=3000, consumer_heartbeat_interval_ms=500
    )
    db = Database(db_url)
    publisher = KafkaPublisher(kafka, client_id="killable")
    consumer = InboxConsumer(db, kafka, SlowRecordingHandler(), publisher, group_id=group, batch_size=200)
    await consumer.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
