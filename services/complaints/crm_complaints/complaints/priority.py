"""Priority from category, severity words, claimed amount and the customer's tier and credit grade."""

from __future__ import annotations

from decimal import Decimal

CATEGORIES = (
    "delay",
    "damage",
    "loss",
    "wrong_delivery",
    "missed_delivery",
    "billing",
    "staff_attitude",
    "pickup",
    "information",
    "other",
)

BASE_PRIORITY: dict[str, int] = {  # 1 = P1 (most urgent) .. 4 = P4
    "loss": 2,
    "damage": 2,
    "delay": 3,
    "wrong_delivery": 3,
    "missed_delivery": 3,
    "billing": 3,
    "staff_attitude": 3,
    "pickup": 3,
    "information": 4,
    "other": 4,
}

SEVERITY_WORDS = (
    "urgent",
    "emergency",
    "lawyer",
    "legal",
    "lawsuit",
    "court",
    "media",
    "journalist",
    "injury",
    "injured",
    "dangerous",
    "hazard",
    "spoiled",
    "perished",
    "again",
    "third time",
    "cancel contract",
    "紧急",
    "加急",
    "律师",
    "起诉",
    "法院",
    "媒体",
    "记者",
    "曝光",
    "受伤",
    "危险",
    "腐烂",
    "变质",
    "再次",
    "多次",
    "解约",
    "12315",
)

AMOUNT_STEPS = (Decimal("10000"), Decimal("100000"))  # each threshold reached raises the priority by one

TIER_RANK = {"key_account": 0, "ordinary": 1, "small": 2, "at_risk": 1, None: 1}


def severity_hits(text: str | None) -> list[str]:
    lowered = (text or "").lower()
    return [word for word in SEVERITY_WORDS if word in lowered]


def compute_priority(
    category: str,
    description: str | None = None,
    claimed_amount: Decimal | float | None = None,
    tier: str | None = None,
    credit_grade: str | None = None,
) -> str:
    level = BASE_PRIORITY.get(category, 4)
    if severity_hits(description):
        level -= 1
    if claimed_amount is not None:
        amount = Decimal(str(claimed_amount))
        level -= sum(amount >= step for step in AMOUNT_STEPS)
    if tier == "key_account" or credit_grade == "A":
        level -= 1
    return f"P{min(4, max(1, level))}"


def queue_key(priority: str, tier: str | None, filed_at) -> tuple:
    """Order of a work queue: priority, then key accounts first, then oldest first."""
    return (int(priority[1]), TIER_RANK.get(tier, 1), filed_at)
