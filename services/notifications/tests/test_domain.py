"""Pure domain rules: templates, conditions, preferences, quiet hours, caps, webhook signatures."""

import datetime as dt
import time

import pytest

from crm_notifications import catalog
from crm_notifications.channels.base import OutgoingMessage
from crm_notifications.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, endpoint_secret, sign, verify_signature
from crm_notifications.delivery.dispatcher import backoff
from crm_notifications.preferences.policy import (
    DEFER,
    SEND,
    SUPPRESS,
    ContactView,
    PreferenceView,
    cap_decision,
    choose_channel,
    consent_decision,
    decide,
    quiet_hours_end,
)
from crm_notifications.rules.conditions import matches
from crm_notifications.settings import RetryPolicy
from crm_notifications.templates.rendering import RenderError, TemplateInvalid, render, validate_template

UTC = dt.UTC


# templates ---------------------------------------------------------------


def test_template_with_declared_known_variables_is_valid():
    validate_template("Complaint {{ complaint_number }}", "Dear {{ contact_name }}", ["complaint_number", "contact_name"])


def test_template_using_an_undeclared_variable_is_refused_at_save_time():
    with pytest.raises(TemplateInvalid) as info:
        validate_template("Complaint {{ complaint_number }}", "Dear {{ contact_name }}, {{ secret }}", ["complaint_number", "contact_name"])
    assert [e.type for e in info.value.errors] == ["undeclared_variable"]
    assert "secret" in info.value.errors[0].msg


def test_template_declaring_a_variable_no_trigger_provides_is_refused():
    with pytest.raises(TemplateInvalid) as info:
        validate_template("Hi", "{{ favourite_colour }}", ["favourite_colour"])
    assert "unknown_variable" in [e.type for e in info.value.errors]


def test_template_syntax_error_is_refused():
    with pytest.raises(TemplateInvalid) as info:
        validate_template("Hi {{ contact_name", "x", ["contact_name"])
    assert info.value.errors[0].type == "template_syntax"


def test_loop_variables_are_not_mistaken_for_inputs():
    validate_template("{{ item_count }} delays", "{% for item in items %}{{ item.order_id }}{% endfor %}", ["items", "item_count"])


def test_sandbox_blocks_access_to_python_internals():
    with pytest.raises(RenderError):
        render("{{ items.__class__.__mro__[1].__subclasses__() }}", {"items": []})


# conditions ----------------------------------------------------------------


def test_conditions_all_must_hold():
    context = {"new_tier": "key_account", "old_tier": "ordinary", "customer": {"abc_class": "A"}}
    assert matches(
        [{"field": "new_tier", "op": "eq", "value": "key_account"}, {"field": "customer.abc_class", "op": "in", "value": ["A", "B"]}],
        context,
    )
    assert not matches(
        [{"field": "new_tier", "op": "eq", "value": "key_account"}, {"field": "customer.abc_class", "op": "eq", "value": "C"}], context
    )


def test_tier_up_condition():
    up = {"new_tier": "key_account", "old_tier": "ordinary"}
    down = {"new_tier": "ordinary", "old_tier": "key_account"}
    condition = [{"field": "new_tier", "op": "tier_up", "value": "old_tier"}]
    assert matches(condition, up)
    assert not matches(condition, down)
    assert matches(condition, {"new_tier": "small", "old_tier": None})


def test_missing_field_never_matches_comparisons():
    assert not matches([{"field": "delay_minutes", "op": "gt", "value": 30}], {})
    assert matches([{"field": "delay_minutes", "op": "not_exists"}], {})


# preferences -----------------------------------------------------------------


def view(**kw):
    base = dict(contact_id="k1", addresses={"email": "a@example.com", "sms": "+8613800138000"})
    base.update(kw)
    return ContactView(**base)


def test_marketing_needs_consent_and_respects_opt_out():
    assert consent_decision(view(marketing_consent=False), "win_back").action == SUPPRESS
    assert consent_decision(view(marketing_consent=True), "win_back").action == SEND
    opted_out = view(marketing_consent=True, preferences={"win_back": PreferenceView(opted_in=False)})
    assert consent_decision(opted_out, "win_back").reason == "opted out of win_back"
    all_out = view(marketing_consent=True, preferences={"*": PreferenceView(opted_in=False)})
    assert consent_decision(all_out, "retention").action == SUPPRESS


def test_transactional_ignores_opt_out():
    everything_off = view(preferences={"*": PreferenceView(opted_in=False), "complaint_updates": PreferenceView(opted_in=False)})
    assert consent_decision(everything_off, "complaint_updates").action == SEND


def test_subscriptions_follow_their_default_until_chosen():
    assert consent_decision(view(), "shipment_status").action == SEND  # default on
    assert consent_decision(view(), "delivery_confirmations").action == SUPPRESS  # default off
    subscribed = view(preferences={"delivery_confirmations": PreferenceView(opted_in=True)})
    assert consent_decision(subscribed, "delivery_confirmations").action == SEND


ON, OFF = PreferenceView(opted_in=True), PreferenceView(opted_in=False)


@pytest.mark.parametrize(
    "category, everything, expected",
    [
        ("bills", OFF, SUPPRESS),  # service, default on
        ("delivery_confirmations", ON, SEND),  # service, default off
        ("retention", OFF, SUPPRESS),  # marketing
        ("win_back", ON, SEND),
        ("complaint_updates", OFF, SEND),  # transactional ignores opt-out, `*` included
    ],
)
def test_star_is_the_choice_for_every_category_without_its_own_entry(category, everything, expected):
    assert consent_decision(view(marketing_consent=True, preferences={"*": everything}), category).action == expected


@pytest.mark.parametrize(
    "category, everything, own, expected",
    [
        ("bills", OFF, ON, SEND),
        ("shipment_status", ON, OFF, SUPPRESS),
        ("delivery_confirmations", ON, OFF, SUPPRESS),
        ("retention", OFF, ON, SEND),
        ("marketing", ON, OFF, SUPPRESS),
        ("bills", OFF, PreferenceView(channel="sms"), SUPPRESS),  # an entry that only picks a channel leaves opt-in to `*`
    ],
)
def test_a_category_entry_wins_over_star(category, everything, own, expected):
    contact = view(marketing_consent=True, preferences={"*": everything, category: own})
    assert consent_decision(contact, category).action == expected


def test_star_never_gives_marketing_consent():
    assert (
        consent_decision(view(marketing_consent=False, preferences={"*": ON, "retention": ON}), "retention").reason
        == "no marketing consent"
    )


def test_channel_choice_of_a_category_wins_over_star():
    contact = view(preferences={"*": PreferenceView(channel="sms"), "bills": PreferenceView(channel="email")})
    assert choose_channel(contact, "email", "bills") == "email"
    assert choose_channel(contact, "email", "shipment_status") == "sms"


def test_channel_choice_overrides_the_rule_channel_even_for_transactional():
    chose_sms = view(preferences={"complaint_updates": PreferenceView(channel="sms")})
    assert choose_channel(chose_sms, "email", "complaint_updates") == "sms"
    assert choose_channel(view(), "email", "complaint_updates") == "email"
    assert choose_channel(view(addresses={"sms": "+8613800138000"}), "preferred", "complaint_updates") == "sms"
    assert choose_channel(view(addresses={}), "email", "complaint_updates") is None


# quiet hours -------------------------------------------------------------------


def test_quiet_hours_across_midnight_in_the_contact_timezone():
    start, end = dt.time(22, 0), dt.time(8, 0)
    # 23:30 in Shanghai is 15:30 UTC; quiet until 08:00 Shanghai next day = 00:00 UTC
    assert quiet_hours_end(dt.datetime(2026, 3, 2, 15, 30, tzinfo=UTC), "Asia/Shanghai", start, end) == dt.datetime(
        2026, 3, 3, 0, 0, tzinfo=UTC
    )
    # 03:00 Shanghai (19:00 UTC the day before): ends the same local morning
    assert quiet_hours_end(dt.datetime(2026, 3, 2, 19, 0, tzinfo=UTC), "Asia/Shanghai", start, end) == dt.datetime(
        2026, 3, 3, 0, 0, tzinfo=UTC
    )
    # 10:00 Shanghai: not quiet
    assert quiet_hours_end(dt.datetime(2026, 3, 2, 2, 0, tzinfo=UTC), "Asia/Shanghai", start, end) is None


def test_quiet_hours_depend_on_the_timezone():
    # 15:30 UTC is 23:30 in Shanghai (quiet) but 16:30 in Berlin (not quiet)
    now = dt.datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    assert quiet_hours_end(now, "Europe/Berlin", dt.time(22, 0), dt.time(8, 0)) is None
    assert quiet_hours_end(now, "Asia/Shanghai", dt.time(22, 0), dt.time(8, 0)) is not None


def _decide(contact, category="shipment_status", urgency="normal", now=None, day=0, week=0):
    return decide(
        contact,
        category=category,
        urgency=urgency,
        now=now or dt.datetime(2026, 3, 2, 15, 30, tzinfo=UTC),
        sent_last_day=day,
        sent_last_week=week,
        per_day=3,
        per_week=10,
    )


def test_decide_defers_in_quiet_hours_and_critical_bypasses():
    quiet = view(quiet_hours_start=dt.time(22, 0), quiet_hours_end=dt.time(8, 0))
    deferred = _decide(quiet)
    assert deferred.action == DEFER and deferred.until == dt.datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    assert _decide(quiet, urgency="critical").action == SEND
    assert _decide(quiet, urgency="critical", day=99).action == SEND


def test_caps_suppress_with_a_reason_but_not_transactional():
    assert cap_decision("service", 3, 3, 3, 10).reason == "frequency cap: 3 of 3 per day already sent"
    assert cap_decision("marketing", 1, 10, 3, 10).reason == "frequency cap: 10 of 10 per week already sent"
    assert cap_decision("transactional", 50, 50, 3, 10).action == SEND
    assert _decide(view(), day=3).action == SUPPRESS


def test_erased_contact_is_never_contacted_even_for_critical():
    assert _decide(view(erased=True), urgency="critical").reason == "contact erased"


# retries ------------------------------------------------------------------------


def test_backoff_is_exponential_and_capped():
    policy = RetryPolicy(base_s=10, max_s=60, max_attempts=5)
    assert [backoff(policy, n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


# webhook signatures -----------------------------------------------------------------


def test_webhook_signature_verifies_and_rejects_tampering_and_replay():
    channel = WebhookChannel("s3cret", clock=lambda: 1_700_000_000)
    message = OutgoingMessage("m1", "webhook", "https://example.com/hook", "Subject", "Body 中文", "zh-CN", "c1", "shipment_status")
    body, headers = channel.request(message)
    ts, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    secret = endpoint_secret("s3cret", "c1")  # no contact on the message: the customer's endpoint secret
    assert signature == sign(secret, 1_700_000_000, body)
    assert verify_signature(secret, body, ts, signature, now=1_700_000_100)
    assert not verify_signature(secret, body + b" ", ts, signature, now=1_700_000_100)  # body changed
    assert not verify_signature("s3cret", body, ts, signature, now=1_700_000_100)  # the master secret is not the endpoint's
    assert not verify_signature(secret, body, str(int(ts) + 1), signature, now=1_700_000_100)  # timestamp changed
    assert not verify_signature(secret, body, ts, signature, now=1_700_000_000 + 301)  # replayed too late
    assert verify_signature(secret, body, ts, f"v1=deadbeef, {signature}", now=1_700_000_100)  # rotation: any listed signature


def test_documented_algorithm_by_hand():
    import hashlib
    import hmac

    body = b'{"id":"m1"}'
    expected = "v1=" + hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", 1700000000, body) == expected


def test_catalog_knows_the_issue_triggers():
    for event_type in (
        "ShipmentDelayed",
        "ComplaintFiled",
        "ComplaintResolved",
        "ComplaintEscalated",
        "CustomerTierChanged",
        "ChurnRiskRaised",
        "PaymentOverdue",
        "ContractRenewalDue",
        "CustomerWinBack",
    ):
        assert catalog.known_trigger(event_type)
    assert not catalog.known_trigger("ParcelTeleported")
    assert "complaint_number" in catalog.trigger_variables("ComplaintFiled")
    assert "items" not in catalog.trigger_variables("ShipmentDelayed")
    assert "items" in catalog.trigger_variables("ShipmentDelayed", digest=True)


def test_retry_policy_env_override_changes_one_field_only(monkeypatch):
    from crm_notifications.settings import NotificationsSettings

    monkeypatch.setenv("NOTIFICATIONS_RETRY__SMS__MAX_ATTEMPTS", "3")
    retry = NotificationsSettings().retry
    assert (retry["sms"].base_s, retry["sms"].max_attempts) == (20, 3)
    assert retry["email"].max_attempts == 10


def test_a_delivery_verifies_with_the_standard_webhooks_library():
    """What a customer's receiver does: the `standardwebhooks` package, the whsec_ secret staff hand out, and the
    headers and body as sent. The legacy X-CRM-Signature still verifies for one version."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    from crm_notifications.channels.webhook import WEBHOOK_ID_HEADER, standard_secret

    sent_at = int(time.time())
    channel = WebhookChannel("s3cret", clock=lambda: sent_at)
    message = OutgoingMessage(
        "m-42", "webhook", "https://example.com/hook", "Subject", "Body 中文", "zh-CN", "c1", "shipment_status", contact_id="k7"
    )
    body, headers = channel.request(message)
    secret = endpoint_secret("s3cret", "k7")
    payload = Webhook(standard_secret(secret)).verify(body, headers)
    assert payload["id"] == "m-42" and payload["text"] == "Body 中文" and headers[WEBHOOK_ID_HEADER] == "m-42"
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_secret(secret)).verify(body + b" ", headers)  # a changed body
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_secret(endpoint_secret("s3cret", "k8"))).verify(body, headers)  # another endpoint's secret
    assert verify_signature(secret, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now=sent_at)
