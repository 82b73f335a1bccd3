"""The production switch: `CRM_ENVIRONMENT=production` makes every service and worker refuse to start with a
development secret, an empty secret, demo login, or a database or broker connection without TLS.

Each check names the setting (its environment variable) and never its value. `CRM_ALLOW_PLAINTEXT=true` is the
one explicit exception, for PostgreSQL and Kafka on a private network (the compose host): it lifts the TLS
checks only. A process calls `refuse_unsafe_production` before it opens anything; its entry points turn the
refusal into one line on stderr and exit status 2 (`exit_if_refused`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from crm_common.settings import KafkaSettings, ServiceSettings

T = TypeVar("T")

# Every secret default this repository ships, and the placeholders of its deployment examples: anyone who reads
# the repository knows them. Compared after stripping; an empty secret is refused as well.
DEVELOPMENT_SECRET_MARKERS = ("change-me", "dev-only", "dev-example")
TLS_DATABASE_MODES = frozenset({"require", "verify-ca", "verify-full"})
TLS_KAFKA_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})


class DeploymentSettings(BaseSettings):
    """Read by every service, worker and the gateway (env prefix CRM_)."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    # PostgreSQL and Kafka without TLS in production: only on a network nobody else shares, and said so here
    allow_plaintext: bool = False

    @property
    def production(self) -> bool:
        return self.environment == "production"


class UnsafeProductionSettings(RuntimeError):
    """The process must not start: `str(exc)` is the one line an operator reads (names settings, never values)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("refusing to start with CRM_ENVIRONMENT=production: " + "; ".join(problems))


def revealed(secret: SecretStr | None) -> str | None:
    """The value of an optional secret, where it is handed to the library that uses it."""
    return secret.get_secret_value() if secret is not None else None


def is_development_secret(secret: SecretStr | str | None) -> bool:
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    value = (value or "").strip()
    return not value or any(marker in value for marker in DEVELOPMENT_SECRET_MARKERS)


def secret_problems(secrets: Mapping[str, SecretStr | str | None]) -> list[str]:
    """`secrets`: environment variable name -> its value."""
    return [
        f"{name} is empty or a development default (set it from a secret)"
        for name, value in secrets.items()
        if is_development_secret(value)
    ]


def database_problems(name: str, url: str, *, allow_plaintext: bool) -> list[str]:
    """`name`: the URL's environment variable. PostgreSQL needs `?ssl=require` (or verify-ca/verify-full)."""
    scheme = urlsplit(url).scheme
    if scheme.startswith("sqlite"):
        return [f"{name} is SQLite, the development database (production runs on PostgreSQL)"]
    if allow_plaintext:
        return []
    modes = parse_qs(urlsplit(url).query).get("ssl", [])
    if not modes or modes[-1] not in TLS_DATABASE_MODES:
        return [f"{name} has no TLS (add ?ssl=verify-full, or set CRM_ALLOW_PLAINTEXT=true on a private network)"]
    return []


def kafka_problems(kafka: KafkaSettings, *, allow_plaintext: bool) -> list[str]:
    problems: list[str] = []
    if kafka.security_protocol.upper() not in TLS_KAFKA_PROTOCOLS and not allow_plaintext:
        problems.append("KAFKA_SECURITY_PROTOCOL has no TLS (use SSL or SASL_SSL, or set CRM_ALLOW_PLAINTEXT=true on a private network)")
    if kafka.sasl_mechanism:
        problems += secret_problems({"KAFKA_SASL_PLAIN_PASSWORD": kafka.sasl_plain_password})
    if kafka.dev_broker:
        problems.append(
            f"KAFKA_DEV_BROKER={kafka.dev_broker} names a development broker whose workarounds have no place against a Kafka cluster "
            "(leave it empty)"
        )
    return problems


def production_problems(settings: ServiceSettings, *, serves_api: bool) -> list[str]:
    """Everything that makes `settings` unfit for production; [] outside production. `serves_api`: the process
    verifies (or signs) edge tokens, so it holds CRM_EDGE_TOKEN_KEY (workers do not)."""
    deployment = settings.deployment
    if not deployment.production:
        return []
    secrets = dict(settings.production_secrets())
    if serves_api:
        secrets["CRM_EDGE_TOKEN_KEY"] = settings.edge.edge_token_key
    return (
        secret_problems(secrets)
        + settings.production_flags()
        + database_problems(settings.env_name("database_url"), settings.connection_url(), allow_plaintext=deployment.allow_plaintext)
        + kafka_problems(settings.kafka, allow_plaintext=deployment.allow_plaintext)
    )


def refuse_unsafe_production(settings: ServiceSettings, *, serves_api: bool) -> None:
    problems = production_problems(settings, serves_api=serves_api)
    if problems:
        raise UnsafeProductionSettings(problems)


def exit_if_refused(start: Callable[[], T]) -> T:
    """For a process's entry point (uvicorn's `module:app`, a worker's main): a refusal is one line on stderr and
    exit status 2, not a traceback."""
    try:
        return start()
    except UnsafeProductionSettings as refusal:
        print(refusal, file=sys.stderr, flush=True)
        raise SystemExit(2) from None
