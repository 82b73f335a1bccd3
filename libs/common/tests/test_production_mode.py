"""The production switch's mechanism (crm_common.production); each service's own refusals are in its tests."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from crm_common.production import (
    DeploymentSettings,
    UnsafeProductionSettings,
    database_problems,
    exit_if_refused,
    production_problems,
    refuse_unsafe_production,
)
from crm_common.settings import DEV_EDGE_TOKEN_KEY, EdgeTokenSettings, KafkaSettings, ServiceSettings
from crm_devbroker.testing import common_unsafe_production, production_settings


def test_development_accepts_every_default():
    assert production_problems(ServiceSettings(deployment=DeploymentSettings()), serves_api=True) == []


def test_production_accepts_tls_and_real_secrets():
    assert production_problems(ServiceSettings(**production_settings()), serves_api=True) == []


@pytest.mark.parametrize("setting, unsafe", common_unsafe_production("SERVICE_"))
def test_production_refuses_each_unsafe_value_alone(setting, unsafe):
    settings = ServiceSettings(**production_settings(**unsafe))
    with pytest.raises(UnsafeProductionSettings) as refusal:
        refuse_unsafe_production(settings, serves_api=True)
    assert len(refusal.value.problems) == 1 and setting in str(refusal.value)


def test_a_worker_holds_no_edge_key_so_its_default_is_not_refused():
    settings = ServiceSettings(**production_settings(edge=EdgeTokenSettings()))
    assert production_problems(settings, serves_api=False) == []
    assert production_problems(settings, serves_api=True) != []


def test_allow_plaintext_lifts_the_tls_checks_only():
    plaintext = production_settings(
        deployment=DeploymentSettings(environment="production", allow_plaintext=True),
        database_url="postgresql://crm:pw@postgres:5432/crm",
        kafka=KafkaSettings(security_protocol="PLAINTEXT", dev_broker=""),
    )
    assert production_problems(ServiceSettings(**plaintext), serves_api=True) == []
    problems = production_problems(ServiceSettings(**plaintext | {"edge": EdgeTokenSettings()}), serves_api=True)
    assert [p.split()[0] for p in problems] == ["CRM_EDGE_TOKEN_KEY"]


def test_the_switch_and_the_exception_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("CRM_ENVIRONMENT", "production")
    monkeypatch.setenv("CRM_ALLOW_PLAINTEXT", "true")
    assert ServiceSettings().deployment == DeploymentSettings(environment="production", allow_plaintext=True)
    monkeypatch.setenv("CRM_ENVIRONMENT", "prod")  # a typo is no third mode that starts with defaults
    with pytest.raises(ValueError):
        DeploymentSettings()


@pytest.mark.parametrize(
    "url, ok",
    [
        ("postgresql://u:p@h/db?ssl=require", True),
        ("postgresql://u:p@h/db?ssl=verify-full", True),
        ("postgresql://u:p@h/db?ssl=disable", False),
        ("postgresql://u:p@h/db", False),
        ("postgresql+asyncpg://u:p@h/db?ssl=verify-ca", True),
    ],
)
def test_database_tls_is_read_from_the_url(url, ok):
    assert (database_problems("X_DATABASE_URL", url, allow_plaintext=False) == []) is ok


def test_refusals_name_settings_never_values(capsys):
    secret = "dev-only-but-unique-" + "7" * 20
    settings = ServiceSettings(
        **production_settings(
            edge=EdgeTokenSettings(edge_token_key=SecretStr(secret + "-change-me")), database_url="postgresql://crm:hunter2-pw@db/crm"
        )
    )
    with pytest.raises(SystemExit) as stopped:
        exit_if_refused(lambda: refuse_unsafe_production(settings, serves_api=True))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CRM_EDGE_TOKEN_KEY" in err and "SERVICE_DATABASE_URL" in err
    assert secret not in err and "hunter2" not in err
    shown = repr(settings) + str(settings.model_dump())
    assert secret not in shown and DEV_EDGE_TOKEN_KEY not in shown and "**********" in shown
