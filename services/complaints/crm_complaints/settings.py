from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from crm_common.settings import ServiceSettings
from crm_complaints.complaints.sla import DEFAULT_TARGETS


class ComplaintsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINTS_", extra="ignore")

    service_name: str = "complaints"
    database_url: SecretStr = SecretStr("sqlite:///var/complaints.db")
    # The call-center lookup is the hot read (bench/status_query.py): the per-checkout ping cost it about
    # 0.5 ms CPU and 1.3 ms wall. Without it, the first statement on a connection the database dropped
    # fails (503, the pool is invalidated, the next request reconnects); the lookup retries that once itself.
    db_pool_pre_ping: bool = False
    # Keep every connection the call-center load needs pooled: overflow connections are closed when returned,
    # and reopening them under load (a PostgreSQL backend each) made 16 concurrent lookups slower than 4.
    db_pool_size: int = 20
    db_max_overflow: int = 0
    # The status lookup reads through Database.read(): asyncpg connections of their own, opened on demand up to this
    # many (the call-center load of one API process; bench/status_query.py runs 16 concurrent requests).
    db_read_pool_size: int = 16
    # SLA scheduler (stored deadlines scanned periodically)
    run_scheduler: bool = True
    scheduler_interval_s: float = 30.0
    scheduler_batch_size: int = 200
    # business rules
    reopen_window_days: int = 14
    duplicate_window_hours: int = 72
    delay_threshold_minutes: int = 24 * 60  # ShipmentDelayed at or past this opens/attaches a complaint
    default_timezone: str = "Asia/Shanghai"
    head_of_service: str = "head-of-service"
    sla_targets: dict[str, tuple[int, int]] = Field(default_factory=lambda: dict(DEFAULT_TARGETS))  # business minutes
    survey_base_url: str = "https://crm.example.com/survey"
    survey_secret: SecretStr = SecretStr("dev-survey-secret-change-me")  # signs the survey links (crm_complaints.survey)
    survey_valid_days: int = 30

    def production_secrets(self) -> dict[str, SecretStr]:
        return {"COMPLAINTS_SURVEY_SECRET": self.survey_secret}
