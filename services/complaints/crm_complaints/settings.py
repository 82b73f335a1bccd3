from pydantic import Field
from pydantic_settings import SettingsConfigDict

from crm_common.settings import ServiceSettings
from crm_complaints.complaints.sla import DEFAULT_TARGETS


class ComplaintsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINTS_", extra="ignore")

    service_name: str = "complaints"
    database_url: str = "sqlite:///var/complaints.db"
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
