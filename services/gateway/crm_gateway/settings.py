"""Gateway settings (env prefix GATEWAY_); complex values are JSON in the environment."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from crm_common.settings import ServiceSettings
from crm_gateway.auth import ApiKeyStore, JWTVerifier, KeySet, SigningKey, signing_key_from_config

DEV_SECRET = "dev-only-insecure-secret-change-me"
DEV_KEY = {"kid": "dev-1", "alg": "HS256", "secret": DEV_SECRET}

UPSTREAM_AUDIENCES = {"profile": "customer-profile", "scoring": "scoring", "complaints": "complaints", "notifications": "notifications"}

# role -> (tokens per second, burst)
DEFAULT_RATE_LIMITS: dict[str, tuple[float, float]] = {
    "anonymous": (1.0, 10.0),
    "customer": (5.0, 30.0),
    "account_manager": (20.0, 100.0),
    "agent": (30.0, 150.0),
    "tms": (100.0, 500.0),
    "admin": (50.0, 300.0),
}

# One sign-in per role for `make run`. `subject` is who the token names: the agent is the complaints service's
# agent `li-na` (team transport, created by the demo seeder), the account manager manages the demo customers whose
# account_manager is `am-wang`; the customer is the demo customer with that contact phone (looked up at sign-in).
DEMO_USERS: list[dict[str, Any]] = [
    {"username": "agent", "subject": "li-na", "role": "agent", "name": "Li Na (transport team)", "team": "transport"},
    {"username": "manager", "subject": "am-wang", "role": "account_manager", "name": "Wang Wei (account manager)", "team": "key-accounts"},
    {
        "username": "customer",
        "subject": "chen-wei",
        "role": "customer",
        "name": "Chen Wei (Huaxin Electronics)",
        "customer_phone": "13800138001",
    },
    {"username": "admin", "role": "admin", "name": "Admin"},
]


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    database_url: SecretStr = SecretStr("sqlite:///var/gateway.db")
    run_consumers: bool = True  # the dashboard read models (crm_gateway.dashboard.handlers)

    # upstreams
    profile_url: str = "http://127.0.0.1:8001"
    scoring_url: str = "http://127.0.0.1:8002"
    complaints_url: str = "http://127.0.0.1:8003"
    notifications_url: str = "http://127.0.0.1:8004"
    upstream_connect_timeout_s: float = 2.0
    upstream_timeout_s: float = 10.0
    upstream_retries: int = 2
    upstream_retry_backoff_s: float = 0.1
    upstream_max_connections: int = 100
    aggregate_timeout_s: float = 3.0

    # aggregated views: "<upstream>:<path>" with {customer_id} filled in
    customer360_sources: dict[str, str] = Field(
        default_factory=lambda: {
            "profile": "profile:/customers/{customer_id}",
            "scores": "scoring:/scores/{customer_id}",
            "complaints": "complaints:/complaints/lookup?customer_id={customer_id}&limit=50",
            # "shipments" comes from the gateway's own read model of logistics.orders unless named here
            "notifications": "notifications:/deliveries?customer_id={customer_id}&limit=10",
        }
    )
    dashboard_sources: dict[str, str] = Field(
        default_factory=lambda: {
            "pareto": "scoring:/reports/pareto",
            "rfm": "scoring:/reports/rfm",  # RFM grid and segment counts over the whole base
            "tiers": "scoring:/reports/tiers",
            "matrices": "scoring:/reports/matrices",  # customers and revenue per cell of the three matrices, whole base
            "abc": "scoring:/reports/abc",  # the three-, four- and ten-way ABC splits, whole base
            "credit_churn": "scoring:/reports/credit-churn",  # credit grades and churn risk with their movements, whole base
            "complaints": "complaints:/reports/complaints",
            "notifications": "notifications:/reports/notifications",
            # tier_movements (and notifications when the service has no report) come from the gateway's own read models
        }
    )
    # the dashboard sources that take the management reports' filters (region, tier, period, ...); the others
    # (complaints, notifications, the gateway's tier movements) always cover the whole base
    dashboard_filtered_sources: list[str] = Field(default_factory=lambda: ["pareto", "rfm", "tiers", "matrices", "abc", "credit_churn"])
    dashboard_window_days: int = 90
    shipments_read_model: bool = True  # consume logistics.orders for the 360's recent shipments
    shipments_retention_days: int = 180

    # authentication
    jwt_issuer: str = "crm-dev"
    jwt_audience: str = "crm-gateway"
    jwt_keys: list[dict[str, Any]] = Field(default_factory=lambda: [_hidden(DEV_KEY)])
    jwt_signing_key: dict[str, Any] | None = Field(default_factory=lambda: _hidden(DEV_KEY))
    jwt_allowed_algorithms: list[str] = Field(default_factory=lambda: ["HS256", "RS256", "ES256", "EdDSA"])
    jwt_leeway_s: float = 30.0
    token_ttl_s: int = 8 * 3600
    api_keys: list[dict[str, Any]] = Field(default_factory=list)

    # client addresses: X-Forwarded-For is honoured only from these peers (IPs or CIDRs); none by default
    trusted_proxies: list[str] = Field(default_factory=list)

    # rate limits: role -> [tokens per second, burst]
    rate_limits: dict[str, tuple[float, float]] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    rate_limit_enabled: bool = True

    # ingestion
    ingest_max_batch: int = 500
    ingest_max_body_bytes: int = 5_000_000
    ingest_dedup_retention_days: int = 30  # event ids older than this are forgotten (duplicate window)
    ingest_purge_interval_s: float = 3600.0

    # console
    demo_login: bool = True
    demo_users: list[dict[str, Any]] = Field(default_factory=lambda: [dict(u) for u in DEMO_USERS])
    demo_customer_id: str | None = None
    dev_sent_store: str | None = None  # make run's message sink (scripts/dev_sink.py) writes here; GET /api/v1/dev/sent reads it

    @field_validator("jwt_keys", mode="after")
    @classmethod
    def _hide_key_secrets(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [_hidden(entry) for entry in value]

    @field_validator("jwt_signing_key", mode="after")
    @classmethod
    def _hide_signing_secret(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _hidden(value) if value is not None else None

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        """Each entry an IP address or network: a typo must fail at start-up, and "*" would let any caller
        pick the address its anonymous rate limit is counted by."""
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network") from None
        return value

    def upstream_audiences(self) -> dict[str, str]:
        """The service_name of each upstream: the audience of the edge tokens the gateway signs for it."""
        return dict(UPSTREAM_AUDIENCES)

    def upstream_urls(self) -> dict[str, str]:
        return {
            "profile": self.profile_url,
            "scoring": self.scoring_url,
            "complaints": self.complaints_url,
            "notifications": self.notifications_url,
        }

    def key_set(self) -> KeySet:
        return KeySet.from_config(_revealed(entry) for entry in self.jwt_keys)

    def verifier(self) -> JWTVerifier:
        return JWTVerifier(
            self.key_set(),
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            allowed_algorithms=self.jwt_allowed_algorithms,
            leeway_s=self.jwt_leeway_s,
        )

    def signing_key(self) -> SigningKey | None:
        return signing_key_from_config(_revealed(self.jwt_signing_key)) if self.jwt_signing_key else None

    def api_key_store(self) -> ApiKeyStore:
        return ApiKeyStore.from_config(self.api_keys)

    @property
    def demo_login_enabled(self) -> bool:
        return not self.deployment.production and self.demo_login

    def production_secrets(self) -> dict[str, SecretStr | str | None]:
        """The HMAC secrets and the private signing key (public keys are no secret)."""
        secrets = {f"GATEWAY_JWT_KEYS (kid {entry.get('kid')})": entry["secret"] for entry in self.jwt_keys if "secret" in entry}
        if self.jwt_signing_key:
            material = self.jwt_signing_key.get("secret", self.jwt_signing_key.get("private_key"))
            secrets[f"GATEWAY_JWT_SIGNING_KEY (kid {self.jwt_signing_key.get('kid')})"] = material
        return secrets

    def production_flags(self) -> list[str]:
        return ["GATEWAY_DEMO_LOGIN is on (development only: set it to false)"] if self.demo_login else []


_SECRET_KEY_FIELDS = ("secret", "private_key")


def _hidden(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A key entry with its secret material as SecretStr: settings can be printed or logged without it."""
    return {name: SecretStr(value) if name in _SECRET_KEY_FIELDS and isinstance(value, str) else value for name, value in entry.items()}


def _revealed(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value.get_secret_value() if isinstance(value, SecretStr) else value for name, value in entry.items()}
