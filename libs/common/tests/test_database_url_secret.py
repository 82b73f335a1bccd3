"""A database URL may carry the password: settings hold it as a secret, and neither a settings error, the settings'
repr nor the startup log shows it (crm_common.settings.ServiceSettings.connection_url is the one place it is read)."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from crm_common.runtime import ServiceRuntime
from crm_common.settings import ServiceSettings, masked_url

PASSWORD = "s3cret-Pw-4417"
URL = f"postgresql://crm:{PASSWORD}@db.internal:5432/crm?ssl=verify-full"


def test_a_settings_error_does_not_echo_the_url(monkeypatch):
    monkeypatch.setenv("SERVICE_DATABASE_URL", URL)
    monkeypatch.setenv("SERVICE_DB_POOL_SIZE", f"ten-{PASSWORD}")
    with pytest.raises(ValidationError) as refused:
        ServiceSettings()
    assert "db_pool_size" in str(refused.value) and PASSWORD not in str(refused.value)
    with pytest.raises(ValidationError) as wrong_type:
        ServiceSettings(database_url=[URL])
    assert "database_url" in str(wrong_type.value) and PASSWORD not in str(wrong_type.value)


def test_repr_and_dump_mask_the_url_and_the_engine_gets_it_whole(monkeypatch):
    monkeypatch.setenv("SERVICE_DATABASE_URL", URL)
    settings = ServiceSettings()
    shown = repr(settings) + str(settings) + str(settings.model_dump()) + settings.model_dump_json()
    assert PASSWORD not in shown and "**********" in shown
    assert settings.connection_url() == URL
    assert settings.shown_database_url() == "postgresql://crm:***@db.internal:5432/crm?ssl=verify-full"


async def test_the_startup_log_names_the_database_without_its_password(caplog):
    caplog.set_level(logging.INFO, logger="crm_common.runtime")
    runtime = ServiceRuntime(ServiceSettings(database_url=URL, service_name="probe"))  # the engine connects lazily
    assert runtime.db.url == URL
    await runtime.start(relay=False, consumers=False)
    await runtime.stop()
    logged = caplog.text
    assert "probe: database postgresql://crm:***@db.internal:5432/crm" in logged and PASSWORD not in logged


def test_a_url_that_does_not_parse_is_not_shown():
    assert masked_url(f"not a url {PASSWORD}") == "(not a database URL)"
    assert masked_url("sqlite:///var/service.db") == "sqlite:///var/service.db"
