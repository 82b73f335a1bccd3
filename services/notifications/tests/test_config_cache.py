"""Rules and templates are cached per process (crm_notifications.configuration): an edit is seen at once by the
process that made it, and by another replica once its refresh interval has passed. On SQLite and PostgreSQL."""

from crm_notifications import configuration
from crm_notifications.rules import service as rules
from crm_notifications.rules.schemas import RuleIn
from crm_notifications.templates import service as templates
from notifications_support import EventFeeder, customer_registered, make_runtime, settings_for
from test_pipeline import _messages, complaint_filed


async def _disable(runtime, rule_name: str) -> None:
    async with runtime.transaction() as session:
        rule = await rules.get(session, rule_name)
        data = RuleIn.model_validate({**{name: getattr(rule, name) for name in RuleIn.model_fields}, "enabled": False})
        await rules.update(session, rule.id, data)


async def test_an_edit_is_seen_at_once_by_the_process_that_made_it(nf, smtp):
    configuration.cache_for(nf.db.engine).refresh_s = 3600  # no periodic check: only the commit of the edit can refresh it
    feeder = EventFeeder(nf)
    await feeder.feed(customer_registered("c1", [{"contact_id": "k1", "email": "k1@example.com", "language": "en"}]))
    await feeder.feed(complaint_filed("c1", "k1", number="CP-1"))  # rules and templates are now cached
    async with nf.transaction() as session:
        await templates.save_version(
            session,
            key="complaint_ack",
            language="en",
            subject="Got it: {{ complaint_number }}",
            body="Dear {{ contact_name }}, thanks.",
            variables=["complaint_number", "contact_name"],
        )
    assert await nf.dispatcher.run_once() == 1
    assert smtp.messages[-1]["Subject"] == "Got it: CP-1"
    await _disable(nf, "complaint-filed-ack")
    await feeder.feed(complaint_filed("c1", "k1", number="CP-2"))
    assert len(await _messages(nf)) == 1


async def test_another_replica_sees_an_edit_within_its_refresh_interval(nf, db_url, clock):
    other = await make_runtime(settings_for(db_url, config_refresh_s=3600), clock, seed=False)
    try:
        feeder, other_feeder = EventFeeder(nf), EventFeeder(other)
        await feeder.feed(customer_registered("c1", [{"contact_id": "k1", "email": "k1@example.com", "language": "en"}]))
        await other_feeder.feed(complaint_filed("c1", "k1"))  # the other replica caches the rules
        await _disable(nf, "complaint-filed-ack")
        await other_feeder.feed(complaint_filed("c1", "k1"))
        assert len(await _messages(nf)) == 2  # within its interval the other replica still used the rule it had
        configuration.cache_for(other.db.engine).refresh_s = 0  # the interval has passed
        await other_feeder.feed(complaint_filed("c1", "k1"))
        assert len(await _messages(nf)) == 2
        await feeder.feed(complaint_filed("c1", "k1"))  # and this process saw it at once
        assert len(await _messages(nf)) == 2
    finally:
        await other.stop()
