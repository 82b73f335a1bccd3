"""Production mode: the profile API and its worker refuse to start with each unsafe setting (crm_common.production)."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr

from crm_common.production import UnsafeProductionSettings
from crm_common.runtime import run_worker
from crm_devbroker.testing import common_unsafe_production, production_settings
from crm_profile.main import create_app
from crm_profile.runtime import build_runtime
from crm_profile.settings import ProfileSettings


def safe(**overrides) -> dict:
    return production_settings(**{"survey_secret": SecretStr(f"survey-{os.urandom(16).hex()}")} | overrides)


def test_the_api_starts_in_production_with_safe_settings():
    assert create_app(ProfileSettings(**safe()), start_background=False).state.runtime.settings.deployment.production


def test_the_default_survey_secret_is_refused():
    """The satisfaction survey links are signed with it: a known default would let anyone answer any contact's survey."""
    with pytest.raises(UnsafeProductionSettings) as refusal:
        create_app(ProfileSettings(**production_settings()), start_background=False)
    assert "PROFILE_SURVEY_SECRET" in str(refusal.value)


@pytest.mark.parametrize("setting, unsafe", common_unsafe_production("PROFILE_"))
def test_the_api_refuses_each_unsafe_setting(setting, unsafe):
    with pytest.raises(UnsafeProductionSettings) as refusal:
        create_app(ProfileSettings(**safe(**unsafe)), start_background=False)
    assert len(refusal.value.problems) == 1 and setting in str(refusal.value)


@pytest.mark.parametrize("setting, unsafe", common_unsafe_production("PROFILE_", serves_api=False))
def test_the_worker_refuses_each_unsafe_setting(setting, unsafe, capsys):
    with pytest.raises(SystemExit) as stopped:
        run_worker(build_runtime(ProfileSettings(**safe(**unsafe))))
    assert stopped.value.code == 2 and setting in capsys.readouterr().err
