"""Rule conditions as data: [{"field": "new_tier", "op": "eq", "value": "key_account"}, ...], all must hold."""

from __future__ import annotations

from typing import Any

OPS = ("eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "exists", "not_exists", "tier_up")

_MISSING = object()

# tiers from lowest to highest, for "tier_up" (new tier ranks above the old one)
TIER_RANK = {"at_risk": 0, "small": 1, "ordinary": 2, "key_account": 3}


def lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    op = condition["op"]
    value = lookup(context, condition["field"])
    expected = condition.get("value")
    if op == "exists":
        return value is not _MISSING and value is not None
    if op == "not_exists":
        return value is _MISSING or value is None
    if op == "tier_up":  # field is the new tier; the old tier is in `value` (a field name), e.g. old_tier
        old = lookup(context, expected or "old_tier")
        old_rank = TIER_RANK.get(old, -1) if old is not _MISSING else -1
        return value is not _MISSING and TIER_RANK.get(value, -1) > old_rank
    if value is _MISSING:
        return False
    try:
        if op == "eq":
            return value == expected
        if op == "ne":
            return value != expected
        if op == "in":
            return value in expected
        if op == "not_in":
            return value not in expected
        if op == "contains":  # the field is a list (e.g. a credit grade's actions) holding the value
            return isinstance(value, list) and expected in value
        if op == "gt":
            return value is not None and value > expected
        if op == "gte":
            return value is not None and value >= expected
        if op == "lt":
            return value is not None and value < expected
        if op == "lte":
            return value is not None and value <= expected
    except TypeError:
        return False
    raise ValueError(f"unknown operator {op!r}")


def matches(conditions: list[dict[str, Any]], context: dict[str, Any]) -> bool:
    return all(holds(c, context) for c in conditions)
