"""Settings: one env prefix per service (PROFILE_, SCORING_...); Kafka (KAFKA_), edge-token and deployment (CRM_)
settings shared."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crm_common.production import DeploymentSettings


class KafkaSettings(BaseSettings):
    """Connection to any Kafka-protocol cluster. Everything managed-Kafka needs passes through."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore", hide_input_in_errors=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    ssl_cafile: str | None = None
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    client_id_prefix: str = "crm"
    topic_prefix: str = ""
    # Tansu holds a JoinGroup for half the session timeout; tests and `make run` use a short one.
    consumer_session_timeout_ms: int = 10000
    consumer_heartbeat_interval_ms: int = 3000
    # The development broker in use, by name: its adapter (entry point group `crm.dev_brokers`, e.g. `tansu` from
    # crm_devbroker) adds what that broker needs to consumers. `make run` and the tests set it; empty against Kafka.
    dev_broker: str = ""

    def physical(self, topic: str) -> str:
        """The cluster's name for a logical topic: several environments can share one cluster."""
        return self.topic_prefix + topic

    def logical(self, physical_topic: str) -> str:
        if self.topic_prefix and physical_topic.startswith(self.topic_prefix):
            return physical_topic[len(self.topic_prefix) :]
        return physical_topic

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments accepted by every aiokafka client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_plain_username
            options["sasl_plain_password"] = self.sasl_plain_password.get_secret_value() if self.sasl_plain_password else None
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            # Without a CA file, the system trust store: what managed Kafka services need.
            options["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        return options


def masked_url(url: str) -> str:
    """`url` with its password replaced by ***; a URL SQLAlchemy cannot parse is not shown at all."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


DEV_EDGE_TOKEN_KEY = "dev-only-insecure-edge-token-key-change-me"


class EdgeTokenSettings(BaseSettings):
    """The proof the gateway (and any other caller of a service's API) signs per request: crm_common.edge.
    The same values go to every service and to the gateway."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore", hide_input_in_errors=True)

    edge_token_key: SecretStr = SecretStr(DEV_EDGE_TOKEN_KEY)  # HMAC-SHA256 key, at least 32 bytes
    edge_token_ttl_s: float = 60.0  # lifetime of a token; longer-lived tokens are refused
    edge_token_leeway_s: float = 5.0  # clock skew allowed between the signer and the service

    @field_validator("edge_token_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < 32:
            raise ValueError("CRM_EDGE_TOKEN_KEY must be at least 32 bytes")
        return value


class ServiceSettings(BaseSettings):
    """Base of every service's settings; subclasses set env_prefix and defaults."""

    # a refused value may be a secret: validation errors name the setting, never the value (subclasses inherit this)
    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore", hide_input_in_errors=True)

    service_name: str = "service"
    # may hold the database password: a secret, revealed only by connection_url() where the engine is built
    database_url: SecretStr = SecretStr("sqlite:///var/service.db")
    db_pool_size: int = 10
    db_max_overflow: int = 10
    # Connections of Database.read() (hot read paths straight through asyncpg on PostgreSQL), opened on demand
    # besides the SQLAlchemy pool.
    db_read_pool_size: int = 10
    db_pool_pre_ping: bool = True  # a ping (BEGIN; SELECT; ROLLBACK) per checkout: safer after a database restart, costs 3 round trips
    run_outbox_relay: bool = True
    run_consumers: bool = True
    outbox_poll_interval_s: float = 0.2
    outbox_batch_size: int = 500
    # Published outbox rows are the durable log the relay republishes from after a broker lost data, and
    # what `crm-outbox replay` reads: kept this long (ISO 8601 duration like P7D, or seconds), then purged.
    outbox_retention: dt.timedelta = dt.timedelta(days=7)
    outbox_purge_interval_s: float = 3600.0
    # How often an idle relay and each consumer ask the broker whether it still holds what they saw.
    broker_check_interval_s: float = 10.0
    consumer_max_attempts: int = 5
    consumer_batch_size: int = 500
    # Graceful stop: how long the consumers may take to finish their batch and the relay to flush (make run's
    # supervisor waits longer before it kills).
    shutdown_grace_s: float = 20.0
    # The worker process (`python -m crm_<pkg>.worker`) serves /healthz, /readyz and /metrics on this port (0: none);
    # the API process serves them on its own port.
    worker_http_host: str = "0.0.0.0"
    worker_http_port: int = Field(default=9000, ge=0, le=65535)
    # How often the gauges read from the database (outbox backlog and age, dead letters, a dispatcher's queue) refresh.
    metrics_refresh_s: float = Field(default=15.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = True
    # Collector thresholds for the service process (Python's default is 700, 10, 10). The consumers allocate
    # many short-lived containers per event; fewer young collections gave scoring 7-59% more facts/s and
    # 8-36% more scores/s in alternating bench/ingest_direct.py runs (docs/performance.md). Negligible memory.
    gc_thresholds: tuple[int, int, int] = (20000, 20, 20)
    # How long an Idempotency-Key answers its first result (crm_common.idempotency); expired records are purged.
    idempotency_retention_hours: float = Field(default=24.0, gt=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    edge: EdgeTokenSettings = Field(default_factory=EdgeTokenSettings)
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)

    def env_name(self, field: str) -> str:
        """The environment variable a field is read from (`database_url` -> `PROFILE_DATABASE_URL`)."""
        return (self.model_config.get("env_prefix") or "").upper() + field.upper()

    def connection_url(self) -> str:
        """The database URL with its password, for the engine (and migrations) only; display `shown_database_url()`."""
        return self.database_url.get_secret_value()

    def shown_database_url(self) -> str:
        """The database URL as logs and messages may show it: the password masked."""
        return masked_url(self.connection_url())

    def production_secrets(self) -> Mapping[str, SecretStr | str | None]:
        """The service's own secrets by environment variable (crm_common.production refuses defaults and empties)."""
        return {}

    def production_flags(self) -> list[str]:
        """Development-only switches that are on (one sentence each, naming the setting): refused in production."""
        return []
