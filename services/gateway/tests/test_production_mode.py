"""Production mode: the gateway and its read-model worker refuse to start with each unsafe setting (crm_common.production):
the development JWT keys and demo login besides what every service refuses."""

from __future__ import annotations

import os

import pytest

from crm_common.production import UnsafeProductionSettings
from crm_common.runtime import ServiceRuntime, run_worker
from crm_devbroker.testing import common_unsafe_production, production_settings
from crm_gateway.main import create_app
from crm_gateway.settings import DEV_KEY, GatewaySettings

PRODUCTION_KEY = {"kid": "prod-1", "alg": "HS256", "secret": "prod-" + os.urandom(24).hex()}


def safe(**overrides) -> dict:
    return production_settings(**{"jwt_keys": [PRODUCTION_KEY], "jwt_signing_key": PRODUCTION_KEY, "demo_login": False} | overrides)


OWN_UNSAFE = [
    pytest.param("GATEWAY_JWT_KEYS (kid dev-1)", {"jwt_keys": [PRODUCTION_KEY, DEV_KEY]}, id="dev-verification-key"),
    pytest.param("GATEWAY_JWT_SIGNING_KEY (kid dev-1)", {"jwt_keys": [PRODUCTION_KEY], "jwt_signing_key": DEV_KEY}, id="dev-signing-key"),
    pytest.param("GATEWAY_DEMO_LOGIN", {"demo_login": True}, id="demo-login"),
]


async def test_the_gateway_starts_in_production_with_safe_settings():
    app = create_app(GatewaySettings(**safe()), start_background=False)
    assert app.state.runtime.settings.deployment.production
    await app.state.gateway.aclose()


async def test_a_production_gateway_with_its_signing_key_off_starts():
    app = create_app(GatewaySettings(**safe(jwt_signing_key=None)), start_background=False)
    await app.state.gateway.aclose()


@pytest.mark.parametrize("setting, unsafe", common_unsafe_production("GATEWAY_") + OWN_UNSAFE)
def test_the_gateway_refuses_each_unsafe_setting(setting, unsafe):
    with pytest.raises(UnsafeProductionSettings) as refusal:
        create_app(GatewaySettings(**safe(**unsafe)), start_background=False)
    assert len(refusal.value.problems) == 1 and setting in str(refusal.value)
    assert DEV_KEY["secret"] not in str(refusal.value)


@pytest.mark.parametrize("setting, unsafe", common_unsafe_production("GATEWAY_", serves_api=False) + OWN_UNSAFE)
def test_the_read_model_worker_refuses_each_unsafe_setting(setting, unsafe, capsys):
    with pytest.raises(SystemExit) as stopped:
        run_worker(ServiceRuntime(GatewaySettings(**safe(**unsafe))))
    assert stopped.value.code == 2 and setting in capsys.readouterr().err


def test_key_secrets_are_hidden_in_the_settings():
    settings = GatewaySettings(**safe())
    assert PRODUCTION_KEY["secret"] not in repr(settings) and DEV_KEY["secret"] not in repr(GatewaySettings())
    assert settings.signing_key().key == PRODUCTION_KEY["secret"].encode()
