"""SCORING_RUN_RESCORING: the rescoring task in a process of its own, apart from the consumers (issue 24)."""

from crm_devbroker.testing import wait_until
from crm_scoring.runtime import build_runtime
from crm_scoring.scoring.service import pending_rescores
from scoring_support import clock, deliveries, history, processor, score_snapshot, scoring_db, settings_for


async def test_a_rescoring_process_without_consumers_scores_what_a_consumer_marked(database_factory, db_kind):
    db = await scoring_db(database_factory, db_kind)
    try:
        proc, dead = processor(db)
        await proc.process(deliveries(history()))  # ingestion only: facts and marks, nothing scored
        assert dead.sent == []
        async with db.sessions() as session:
            assert await pending_rescores(session) > 0
        assert await score_snapshot(db) == {}
    finally:
        await db.dispose()

    quiet = {"run_outbox_relay": False, "metrics_refresh_s": 3600}
    rescoring = build_runtime(settings_for(db.url, run_consumers=False, run_rescoring=True, rescore_interval_s=0.05, **quiet), clock=clock)
    await rescoring.start()
    try:

        async def scored():
            async with rescoring.db.sessions() as session:
                return await pending_rescores(session) == 0

        await wait_until(scored, timeout_s=30)
        assert len(await score_snapshot(rescoring.db)) == 22  # 24 customers, one merged away, one erased
    finally:
        await rescoring.stop()


def test_a_consumer_only_process_does_not_rescore_and_the_default_rescores_with_the_consumers():
    assert "rescore" not in build_runtime(settings_for(run_rescoring=False)).background_loops
    assert build_runtime(settings_for()).background_loops["rescore"].with_consumers
