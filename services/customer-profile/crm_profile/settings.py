from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from crm_common.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILE_", extra="ignore")

    service_name: str = "customer-profile"
    database_url: SecretStr = SecretStr("sqlite:///var/customer-profile.db")
