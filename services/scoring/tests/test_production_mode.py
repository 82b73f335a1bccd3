"""Production mode: the scoring API and its worker refuse to start with each unsafe setting (crm_common.production)."""

from __future__ import annotations

import pytest

from crm_common.production import UnsafeProductionSettings
from crm_common.runtime import run_worker
from crm_devbroker.testing import common_unsafe_production, production_settings
from crm_scoring.main import create_app
from crm_scoring.runtime import build_runtime
from crm_scoring.settings import ScoringSettings


def test_the_api_starts_in_production_with_safe_settings():
    assert create_app(ScoringSettings(**production_settings()), start_background=False).state.runtime.settings.deployment.production


@pytest.mark.parametrize("setting, unsafe", common_unsafe_production("SCORING_"))
def test_the_api_refuses_each_unsafe_setting(setting, unsafe):
    with pytest.raises(UnsafeProductionSettings) as refusal:
        create_app(ScoringSettings(**production_settings(**unsafe)), start_background=False)
    assert len(refusal.value.problems) == 1 and setting in str(refusal.value)


@pytest.mark.parametrize("setting, unsafe", common_unsafe_production("SCORING_", serves_api=False))
def test_the_worker_refuses_each_unsafe_setting(setting, unsafe, capsys):
    with pytest.raises(SystemExit) as stopped:
        run_worker(build_runtime(ScoringSettings(**production_settings(**unsafe))))
    assert stopped.value.code == 2 and setting in capsys.readouterr().err
