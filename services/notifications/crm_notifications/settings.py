from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from crm_common.settings import ServiceSettings


class RetryPolicy(BaseModel):
    """Exponential backoff for one channel: base * 2**(attempt-1), capped; final failure after max_attempts."""

    base_s: float = 30.0
    max_s: float = 3600.0
    max_attempts: int = 8


def _default_retry() -> dict[str, RetryPolicy]:
    return {
        "email": RetryPolicy(base_s=30, max_s=3600, max_attempts=10),
        "sms": RetryPolicy(base_s=20, max_s=1800, max_attempts=8),
        "push": RetryPolicy(base_s=20, max_s=1800, max_attempts=6),
        "webhook": RetryPolicy(base_s=10, max_s=3600, max_attempts=12),
        "inbox": RetryPolicy(base_s=5, max_s=60, max_attempts=5),
    }


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "notifications"
    database_url: SecretStr = SecretStr("sqlite:///var/notifications.db")

    # channels
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_use_tls: bool = False
    smtp_timeout_s: float = 10.0
    mail_from: str = "CRM <no-reply@crm.local>"
    sms_provider_url: str = "http://127.0.0.1:9300"
    push_provider_url: str = "http://127.0.0.1:9300"
    provider_token: SecretStr | None = None
    provider_timeout_s: float = 10.0
    webhook_secret: SecretStr = SecretStr("dev-webhook-secret-change-me")
    webhook_timeout_s: float = 10.0
    public_base_url: str = "http://localhost:8000/api/v1/notifications"
    survey_base_url: str = "http://localhost:8000/survey"
    unsubscribe_secret: SecretStr = SecretStr("dev-unsubscribe-secret-change-me")
    erasure_secret: SecretStr = SecretStr("dev-erasure-secret-change-me")  # keys the hashes of erased addresses; never rotate it

    # pipeline
    run_dispatcher: bool = True
    run_scans: bool = True
    dispatcher_poll_interval_s: float = 1.0
    dispatcher_batch_size: int = 100
    dispatcher_concurrency: int = 8  # sends in flight per channel
    dispatcher_chunk_size: int = 100  # messages claimed, decided and recorded per transaction
    dispatcher_chunks_in_flight: int = 3  # PostgreSQL: chunks handled at the same time (SQLite: always 1)
    send_lease_s: float = 120.0
    unknown_contact_retry_s: float = 30.0  # an event names a contact whose snapshot has not arrived yet
    unknown_contact_give_up_s: float = 86400.0
    retry: dict[str, RetryPolicy] = Field(default_factory=_default_retry)
    cap_per_day: int = 3
    cap_per_week: int = 10
    scan_interval_s: float = 3600.0
    renewal_days_before: int = 30
    winback_after_days: int = 90
    seed_defaults: bool = True
    config_refresh_s: float = 2.0  # how stale another replica's edit of rules/templates may be here (this process's own: never)

    def production_secrets(self) -> dict[str, SecretStr | None]:
        secrets = {
            name: getattr(self, field)
            for name, field in (
                ("NOTIFICATIONS_WEBHOOK_SECRET", "webhook_secret"),
                ("NOTIFICATIONS_UNSUBSCRIBE_SECRET", "unsubscribe_secret"),
                ("NOTIFICATIONS_ERASURE_SECRET", "erasure_secret"),
                ("NOTIFICATIONS_PROVIDER_TOKEN", "provider_token"),
            )
        }
        if self.smtp_username:  # an SMTP relay without authentication needs no password
            secrets["NOTIFICATIONS_SMTP_PASSWORD"] = self.smtp_password
        return secrets

    @field_validator("retry", mode="before")
    @classmethod
    def _merge_retry(cls, value):
        """NOTIFICATIONS_RETRY__SMS__MAX_ATTEMPTS=3 changes that one field; every other default stays."""
        merged = {name: policy.model_dump() for name, policy in _default_retry().items()}
        for name, given in (value or {}).items():
            given = given.model_dump() if isinstance(given, BaseModel) else dict(given)
            merged[name] = {**merged.get(name, {}), **given}
        return merged
