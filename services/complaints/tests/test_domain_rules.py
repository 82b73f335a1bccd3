"""Routing, assignment, priority and state-machine rules (pure functions)."""

import datetime as dt

import pytest

from crm_complaints.complaints.errors import InvalidComplaintInput, ReopenWindowPassed, TransitionNotAllowed
from crm_complaints.complaints.priority import compute_priority, queue_key
from crm_complaints.complaints.routing import DEFAULT_RULES, AgentLoad, RoutingRule, Shift, on_shift, pick_agent, route
from crm_complaints.complaints.states import TRANSITIONS, check_reopen, check_transition, customer_status
from crm_complaints.problems import problem_of

UTC = dt.UTC


def test_most_specific_rule_wins_and_default_applies():
    rules = [
        RoutingRule(team="claims", category="damage", position=1),
        RoutingRule(team="warehouse", category="damage", service_type="warehousing", position=9),
        RoutingRule(team="transport", category="damage", region="East", service_type="trunk", position=9),
        RoutingRule(team="billing", region="East", position=0),
    ]
    assert route(rules, "damage", "North", "express") == ("claims", rules[0])
    assert route(rules, "damage", "North", "warehousing")[0] == "warehouse"
    assert route(rules, "damage", "East", "trunk")[0] == "transport"
    assert route(rules, "damage", "East", "express")[0] == "billing"  # same specificity: lower position wins
    assert route(rules, "delay", "East", None)[0] == "billing"
    assert route(rules, "delay", "West", None) == ("customer_service", None)


def test_equal_specificity_goes_to_lower_position():
    rules = [RoutingRule(team="a", region="East", position=5), RoutingRule(team="b", category="delay", position=2)]
    assert route(rules, "delay", "East")[0] == "b"


def test_default_rules_cover_every_category():
    from crm_complaints.complaints.priority import CATEGORIES

    for category in CATEGORIES:
        team, _ = route(DEFAULT_RULES, category)
        assert team in {"transport", "warehouse", "billing", "customer_service", "claims"}


def test_least_load_and_round_robin():
    t0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
    loads = [AgentLoad("a2", 3, t0), AgentLoad("a1", 1, t0 + dt.timedelta(hours=1)), AgentLoad("a3", 1, t0)]
    assert pick_agent(loads, "least_load") == "a3"  # tie on load: assigned longest ago
    assert pick_agent(loads, "round_robin", None) == "a1"
    assert pick_agent(loads, "round_robin", "a1") == "a2"
    assert pick_agent(loads, "round_robin", "a3") == "a1"
    assert pick_agent([], "least_load") is None


def test_shifts_including_overnight():
    shifts = [Shift(0, 9 * 60, 18 * 60), Shift(2, 22 * 60, 6 * 60)]
    tz = "Asia/Shanghai"
    at = lambda *a: dt.datetime(*a, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # noqa: E731
    assert on_shift(shifts, at(2026, 9, 21, 10, 0), tz)  # Monday 10:00
    assert not on_shift(shifts, at(2026, 9, 21, 18, 0), tz)
    assert on_shift(shifts, at(2026, 9, 23, 23, 0), tz)  # Wednesday night
    assert on_shift(shifts, at(2026, 9, 24, 5, 59), tz)  # Thursday early morning
    assert not on_shift(shifts, at(2026, 9, 24, 6, 0), tz)


def test_priority_rules():
    assert compute_priority("information") == "P4"
    assert compute_priority("delay") == "P3"
    assert compute_priority("delay", "This is URGENT") == "P2"
    assert compute_priority("delay", "货物再次延误，我要找律师") == "P2"
    assert compute_priority("damage", claimed_amount=15000) == "P1"
    assert compute_priority("billing", claimed_amount=200000) == "P1"
    assert compute_priority("delay", tier="key_account") == "P2"
    assert compute_priority("delay", credit_grade="A") == "P2"
    assert compute_priority("loss", "urgent", 500000, "key_account") == "P1"
    t = dt.datetime(2026, 1, 1, tzinfo=UTC)
    ordered = sorted(
        [("x", "P2", "ordinary", t), ("k", "P2", "key_account", t + dt.timedelta(hours=1)), ("p1", "P1", None, t)],
        key=lambda r: queue_key(r[1], r[2], r[3]),
    )
    assert [r[0] for r in ordered] == ["p1", "k", "x"]


def test_state_machine():
    check_transition("new", "assigned")
    check_transition("waiting_on_customer", "in_progress")
    for current, target in [("new", "resolved"), ("closed", "closed"), ("resolved", "waiting_on_customer"), ("new", "in_progress")]:
        with pytest.raises(TransitionNotAllowed) as info:
            check_transition(current, target)
        assert problem_of(info.value).status == 409
        assert sorted(info.value.facts["allowed"]) == sorted(TRANSITIONS[current])
    with pytest.raises(InvalidComplaintInput) as info:
        check_transition("new", "exploded")
    assert problem_of(info.value).status == 422


def test_reopen_window():
    resolved = dt.datetime(2026, 1, 1, tzinfo=UTC)
    check_reopen("resolved", resolved, resolved + dt.timedelta(days=6), 7)
    with pytest.raises(ReopenWindowPassed) as info:
        check_reopen("closed", resolved, resolved + dt.timedelta(days=8), 7)
    assert problem_of(info.value).status == 409
    with pytest.raises(TransitionNotAllowed):
        check_reopen("in_progress", resolved, resolved, 7)


def test_customer_words():
    assert customer_status("waiting_on_customer", "en") == "We are waiting for information from you"
    assert customer_status("resolved", "zh-CN") == "您的投诉已处理完毕"
