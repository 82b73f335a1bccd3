"""Routing rules (data, not code) and assignment within a team.

A rule matches a complaint when each of its non-empty fields (category, region, service_type)
equals the complaint's; among matching rules the most specific (most fields set) wins, ties go to
the lower `position`. Within the team, an agent on shift is picked by least open load or
round-robin; with nobody on shift the complaint waits in the team queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

TEAMS = ("transport", "warehouse", "billing", "customer_service", "claims")
DEFAULT_TEAM = "customer_service"
Strategy = Literal["least_load", "round_robin"]


@dataclass(frozen=True)
class RoutingRule:
    team: str
    category: str | None = None
    region: str | None = None
    service_type: str | None = None
    position: int = 0
    name: str | None = None
    built_in: bool = False

    @property
    def specificity(self) -> int:
        return sum(value is not None for value in (self.category, self.region, self.service_type))

    def matches(self, category: str, region: str | None, service_type: str | None) -> bool:
        return (
            (self.category is None or self.category == category)
            and (self.region is None or self.region == region)
            and (self.service_type is None or self.service_type == service_type)
        )


def rule_record(rule: RoutingRule | None, team: str) -> dict:
    """What an assignment keeps of the rule that chose its team: a copy, since the rule table is replaced as a whole
    (a stored rule has no lasting id). `source` is stored (the admin's), built_in (no rules stored) or fallback (none matched)."""
    if rule is None:
        return {"source": "fallback", "team": team}
    return {
        "source": "built_in" if rule.built_in else "stored",
        "name": rule.name,
        "category": rule.category,
        "region": rule.region,
        "service_type": rule.service_type,
        "team": rule.team,
        "position": rule.position,
    }


def route(
    rules: Iterable[RoutingRule], category: str, region: str | None = None, service_type: str | None = None, default: str = DEFAULT_TEAM
) -> tuple[str, RoutingRule | None]:
    """The team for a complaint and the rule that chose it (None when the default applied)."""
    matching = [r for r in rules if r.matches(category, region, service_type)]
    if not matching:
        return default, None
    best = min(matching, key=lambda r: (-r.specificity, r.position))
    return best.team, best


# Built-in rules used when a deployment has not loaded its own.
DEFAULT_RULES: tuple[RoutingRule, ...] = (
    RoutingRule(team="transport", category="delay", position=10, built_in=True),
    RoutingRule(team="transport", category="wrong_delivery", position=10, built_in=True),
    RoutingRule(team="transport", category="pickup", position=10, built_in=True),
    RoutingRule(team="claims", category="damage", position=10, built_in=True),
    RoutingRule(team="claims", category="loss", position=10, built_in=True),
    RoutingRule(team="warehouse", category="damage", service_type="warehousing", position=5, built_in=True),
    RoutingRule(team="billing", category="billing", position=10, built_in=True),
    RoutingRule(team="customer_service", category="staff_attitude", position=10, built_in=True),
    RoutingRule(team="customer_service", category="information", position=10, built_in=True),
    RoutingRule(team="customer_service", category="other", position=10, built_in=True),
)


@dataclass(frozen=True)
class Shift:
    weekday: int  # 0 = Monday, in the team's time zone
    start_minute: int
    end_minute: int  # may be <= start_minute for a shift that runs past midnight


def on_shift(shifts: Iterable[Shift], now: dt.datetime, timezone: str) -> bool:
    local = now.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    for shift in shifts:
        if shift.start_minute < shift.end_minute:
            if shift.weekday == weekday and shift.start_minute <= minute < shift.end_minute:
                return True
        else:  # overnight: the start day's evening and the next day's morning
            if shift.weekday == weekday and minute >= shift.start_minute:
                return True
            if (shift.weekday + 1) % 7 == weekday and minute < shift.end_minute:
                return True
    return False


@dataclass(frozen=True)
class AgentLoad:
    agent_id: str
    open_count: int
    last_assigned_at: dt.datetime | None = None
    capacity: int | None = None  # None: no limit
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()


def eligible(candidates: Sequence[AgentLoad], category: str | None = None, language: str | None = None) -> list[AgentLoad]:
    """The agents on shift who may take this complaint: below their capacity; among them those with the category as a
    skill when any has it, then among those the ones speaking the complaint's language when any does. A skill or a
    language narrows the choice but never empties it: nobody with the skill still means someone takes it."""
    pool = [c for c in candidates if c.capacity is None or c.open_count < c.capacity]
    for wanted, held in ((category, lambda c: c.skills), (language, lambda c: c.languages)):
        if wanted is not None:
            matching = [c for c in pool if wanted in held(c)]
            pool = matching or pool
    return pool


def pick_agent(candidates: Sequence[AgentLoad], strategy: Strategy = "least_load", cursor: str | None = None) -> str | None:
    """The agent to assign among those on shift; None when nobody is on shift (queue at team level).

    least_load: fewest open complaints, then the one assigned longest ago, then by id.
    round_robin: the next agent id after `cursor` (the last one assigned) in id order, wrapping.
    """
    if not candidates:
        return None
    if strategy == "round_robin":
        ids = sorted(c.agent_id for c in candidates)
        if cursor is None:
            return ids[0]
        later = [agent for agent in ids if agent > cursor]
        return later[0] if later else ids[0]
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    best = min(candidates, key=lambda c: (c.open_count, c.last_assigned_at or epoch, c.agent_id))
    return best.agent_id
