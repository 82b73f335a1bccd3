from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from crm_common.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILE_", extra="ignore")

    service_name: str = "customer-profile"
    database_url: SecretStr = SecretStr("sqlite:///var/customer-profile.db")
    # win-back (docs/customer-profile.md "Win-back"): a customer is lost when scoring announces P(alive) (0-100) under
    # this and its last order seen is at least lost_after_days old
    lost_after_days: int = Field(default=180, ge=1, le=3660)
    lost_p_alive_below: float = Field(default=20.0, gt=0, le=100)
    # key-account monthly service reports (docs/account-management.md): every check_s the process looks whether the
    # month before today (Asia/Shanghai) has its reports yet, and stores them once
    key_account_reports_scheduler: bool = True
    key_account_reports_check_s: float = Field(default=300.0, gt=0)
    # reports (and their events) per transaction: a chunk holds SQLite's write lock only while it is written
    key_account_reports_chunk: int = Field(default=500, ge=1, le=10_000)
    # satisfaction survey campaigns (docs/account-management.md): the links a contact opens without signing in are signed
    # with this secret (crm_common.links), valid survey_valid_days by default, and lead to the gateway's page
    survey_secret: SecretStr = SecretStr("dev-satisfaction-survey-secret-change-me")
    survey_valid_days: int = Field(default=30, ge=1, le=365)
    survey_base_url: str = "http://localhost:8000/satisfaction-survey"

    def production_secrets(self) -> dict[str, SecretStr]:
        return {"PROFILE_SURVEY_SECRET": self.survey_secret}
