"""Scoring settings (env prefix SCORING_). Weights that do not add up to 1 are refused at start-up."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from crm_common.events.bounds import accepted_currencies
from crm_common.events.scoring import CreditAction
from crm_common.settings import ServiceSettings
from crm_scoring.service_levels.targets import DEFAULT_TARGETS, check_targets

_TOLERANCE = 1e-6


def _check_weights(name: str, weights: dict[str, float], expected: set[str]) -> dict[str, float]:
    unknown = set(weights) - expected
    missing = expected - set(weights)
    if unknown or missing:
        raise ValueError(f"{name}: expected keys {sorted(expected)}, unknown {sorted(unknown)}, missing {sorted(missing)}")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"{name}: weights must be >= 0")
    total = sum(weights.values())
    if abs(total - 1.0) > _TOLERANCE:
        raise ValueError(f"{name}: weights add up to {total:.6f}, not 1")
    return weights


LOYALTY_KEYS = {"repeat_rate", "tenure", "regularity", "share_of_wallet", "satisfaction"}
SATISFACTION_KEYS = {"on_time", "damage_loss", "complaints", "resolution", "survey", "service_levels"}
CURRENT_VALUE_KEYS = {"revenue", "margin", "order_size", "continuity"}
POTENTIAL_VALUE_KEYS = {"growth", "cross_sell", "wallet_room", "lifetime_value"}


class CreditPolicy(BaseModel):
    """What one credit grade calls for: actions announced with CreditGradeChanged, and how often to review the credit."""

    actions: list[CreditAction] = Field(default_factory=list)
    review_every_days: int = Field(ge=1, le=3660)


def _default_credit_policy() -> dict[str, CreditPolicy]:
    # ../shared/domain.md: A fewer reviews and priority service; C shorter payment cycle, the account manager told;
    # D frequent reviews, a credit review now, finance told
    return {
        "A": CreditPolicy(actions=["priority_service"], review_every_days=365),
        "B": CreditPolicy(actions=[], review_every_days=180),
        "C": CreditPolicy(actions=["payment_cycle_reminder", "alert_account_manager"], review_every_days=90),
        "D": CreditPolicy(actions=["credit_review_task", "alert_finance"], review_every_days=30),
    }


class AbcCutoffs(BaseModel):
    """Shares of customers (ranked by contribution) in A, B and C; D is the rest."""

    a: float = Field(0.01, gt=0, lt=1)
    b: float = Field(0.04, ge=0, lt=1)
    c: float = Field(0.15, ge=0, lt=1)

    @model_validator(mode="after")
    def _fits(self) -> AbcCutoffs:
        if self.a + self.b + self.c >= 1:
            raise ValueError("ABC cut-offs: A + B + C must leave room for D (sum < 1)")
        return self


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "scoring"
    database_url: SecretStr = SecretStr("sqlite:///var/scoring.db")
    port: int = 8002

    currency: str = Field("CNY", min_length=3, max_length=3)
    abc_basis: Literal["revenue", "margin"] = "revenue"
    abc_cutoffs: AbcCutoffs = Field(default_factory=AbcCutoffs)
    window_days: int = Field(365, ge=30, description="Rolling window of current value, RFM frequency/monetary.")
    default_margin_rate: float = Field(0.15, ge=0, le=1, description="Margin share assumed when an order carries neither margin nor cost.")

    loyalty_weights: dict[str, float] = Field(
        default_factory=lambda: {"repeat_rate": 0.25, "tenure": 0.2, "regularity": 0.25, "share_of_wallet": 0.15, "satisfaction": 0.15}
    )
    satisfaction_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "on_time": 0.25,
            "damage_loss": 0.15,
            "complaints": 0.2,
            "resolution": 0.15,
            "survey": 0.15,
            "service_levels": 0.1,
        }
    )
    current_value_weights: dict[str, float] = Field(
        default_factory=lambda: {"revenue": 0.4, "margin": 0.3, "order_size": 0.1, "continuity": 0.2}
    )
    potential_value_weights: dict[str, float] = Field(
        default_factory=lambda: {"growth": 0.3, "cross_sell": 0.2, "wallet_room": 0.2, "lifetime_value": 0.3}
    )
    tenure_full_days: int = Field(730, ge=1, description="Tenure at which the tenure component reaches 1.")
    matrix_threshold: float = Field(50.0, ge=0, le=100, description="High/low split of 0-100 scores in the matrices.")

    # credit
    default_days: int = Field(90, ge=1, description="Days overdue that make an invoice a default.")
    credit_policy: dict[Literal["A", "B", "C", "D"], CreditPolicy] = Field(
        default_factory=_default_credit_policy, description="Per credit grade: the actions it calls for and the review interval."
    )
    # churn
    churn_horizon_days: int = Field(90, ge=1)
    clv_horizon_days: int = Field(365, ge=1)
    p_alive_high_risk: float = Field(0.3, ge=0, le=1)
    p_alive_medium_risk: float = Field(0.6, ge=0, le=1)
    frequency_drop_ratio: float = Field(
        0.5, gt=0, lt=1, description="Recent order rate below this share of the customer's own rate is a signal."
    )
    satisfaction_drop_points: float = Field(15.0, ge=0)
    complaint_sla_hours: dict[str, float] = Field(default_factory=lambda: {"P1": 24, "P2": 48, "P3": 72, "P4": 120})
    # outputs
    score_step: float = Field(5.0, gt=0, description="CustomerScored only when a 0-100 score moves at least this much.")
    recompute_cron: str = Field("0 2 * * *", description="When the population recompute runs (cron expression, in time_zone).")
    time_zone: str = Field("Asia/Shanghai", description="Time zone of recompute_cron (IANA name).")
    run_scheduler: bool = True
    recompute_page_rows: int = Field(
        100_000,
        ge=1,
        description="Rows per statement when the population recompute reads a fact table (keyset pages): each statement "
        "stays within the per-request command timeout of the database connections, whatever the table's size.",
    )
    # incremental scoring: the consumer only ingests facts and marks customers; a task rescores the marked ones
    consumer_batch_size: int = Field(2000, ge=1, description="Events per consumer batch (one transaction).")
    rescore_interval_s: float = Field(0.5, gt=0, description="Pause between passes of the rescoring task over the marked customers.")
    rescore_batch_size: int = Field(2000, ge=1, description="Marked customers rescored per transaction.")
    run_rescoring: bool | None = Field(
        None,
        description="Where the rescoring task runs: unset, in every process that runs the consumers; false, not here (a "
        "consumer-only replica); true, here even without the consumers (rescoring scaled apart from ingestion).",
    )
    service_level_targets: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {tier: dict(targets) for tier, targets in DEFAULT_TARGETS.items()},
        description="Agreed service levels per commercial tier (key_account, ordinary, small; at_risk is refused) "
        "(docs/scoring.md, 'Service levels'); a closed month that misses one emits ServiceLevelBreached.",
    )

    @field_validator("service_level_targets")
    @classmethod
    def _service_level_targets(cls, v):
        return check_targets(v)

    @field_validator("credit_policy")
    @classmethod
    def _every_grade(cls, policy: dict) -> dict:
        missing = {"A", "B", "C", "D"} - set(policy)
        if missing:
            raise ValueError(f"credit_policy: no policy for grade(s) {sorted(missing)}")
        return policy

    @field_validator("loyalty_weights")
    @classmethod
    def _loyalty(cls, v):
        return _check_weights("loyalty_weights", v, LOYALTY_KEYS)

    @field_validator("satisfaction_weights")
    @classmethod
    def _satisfaction(cls, v):
        return _check_weights("satisfaction_weights", v, SATISFACTION_KEYS)

    @field_validator("current_value_weights")
    @classmethod
    def _current(cls, v):
        return _check_weights("current_value_weights", v, CURRENT_VALUE_KEYS)

    @field_validator("potential_value_weights")
    @classmethod
    def _potential(cls, v):
        return _check_weights("potential_value_weights", v, POTENTIAL_VALUE_KEYS)

    @field_validator("recompute_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if not croniter.is_valid(v):
            raise ValueError(f"recompute_cron: {v!r} is not a cron expression (minute hour day month weekday)")
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time_zone: {v!r} is not an IANA time zone") from None
        return v

    @field_validator("currency")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()

    @model_validator(mode="after")
    def _scores_every_accepted_currency(self) -> ScoringSettings:
        # amounts are not converted: a currency the edge accepts but scoring cannot sum would be dead-lettered
        others = set(accepted_currencies()) - {self.currency}
        if others:
            raise ValueError(
                f"CRM_CURRENCIES accepts {sorted(others)} but scoring sums amounts in {self.currency} only; "
                "accept only the scoring currency"
            )
        return self

    @model_validator(mode="after")
    def _risk_order(self) -> ScoringSettings:
        if self.p_alive_high_risk > self.p_alive_medium_risk:
            raise ValueError("p_alive_high_risk must be <= p_alive_medium_risk")
        return self
