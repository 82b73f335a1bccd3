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
