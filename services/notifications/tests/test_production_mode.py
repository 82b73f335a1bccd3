"""Production mode: the notifications API and its worker refuse to start with each unsafe setting, the signing secrets
included (crm_common.production); one real process start shows the operator's one line and the exit status."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from crm_common.production import UnsafeProductionSettings
from crm_common.runtime import run_worker
from crm_devbroker.testing import common_unsafe_production, production_settings
from crm_notifications.main import create_app
from crm_notifications.runtime import NotificationsRuntime
from crm_notifications.settings import NotificationsSettings

SIGNING_SECRETS = ("webhook_secret", "unsubscribe_secret", "erasure_secret", "provider_token")


def safe(**overrides) -> dict:
    own = {name: SecretStr(f"{name}-{os.urandom(16).hex()}") for name in SIGNING_SECRETS}
    return production_settings(**own | overrides)


def own_unsafe() -> list:
    defaults = NotificationsSettings.model_fields
    cases = [
        pytest.param(f"NOTIFICATIONS_{name.upper()}", {name: defaults[name].default}, id=f"{name}-default") for name in SIGNING_SECRETS
    ]
    return cases + [
        pytest.param("NOTIFICATIONS_WEBHOOK_SECRET", {"webhook_secret": SecretStr(" ")}, id="webhook-secret-blank"),
        pytest.param(
            "NOTIFICATIONS_UNSUBSCRIBE_SECRET", {"unsubscribe_secret": SecretStr("change-me-unsubscribe")}, id="compose-placeholder"
        ),
        pytest.param("NOTIFICATIONS_SMTP_PASSWORD", {"smtp_username": "crm-mailer"}, id="smtp-password-empty"),
    ]


def test_the_api_starts_in_production_with_safe_settings():
    assert create_app(NotificationsSettings(**safe()), start_background=False).state.runtime.settings.deployment.production


@pytest.mark.parametrize("setting, unsafe", common_unsafe_production("NOTIFICATIONS_") + own_unsafe())
def test_the_api_refuses_each_unsafe_setting(setting, unsafe):
    with pytest.raises(UnsafeProductionSettings) as refusal:
        create_app(NotificationsSettings(**safe(**unsafe)), start_background=False)
    assert len(refusal.value.problems) == 1 and setting in str(refusal.value)


@pytest.mark.parametrize("setting, unsafe", common_unsafe_production("NOTIFICATIONS_", serves_api=False) + own_unsafe())
def test_the_worker_refuses_each_unsafe_setting(setting, unsafe, capsys):
    with pytest.raises(SystemExit) as stopped:
        run_worker(NotificationsRuntime(NotificationsSettings(**safe(**unsafe))))
    assert stopped.value.code == 2 and setting in capsys.readouterr().err


def production_environment() -> dict[str, str]:
    """A process environment that production accepts except for the webhook secret, left at its default."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "NOTIFICATIONS_", "KAFKA_"))}
    return inherited | {
        "CRM_ENVIRONMENT": "production",
        "CRM_EDGE_TOKEN_KEY": os.urandom(32).hex(),
        "NOTIFICATIONS_DATABASE_URL": "postgresql://crm:pw@db.invalid:5432/crm?ssl=verify-full",
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET": os.urandom(16).hex(),
        "NOTIFICATIONS_ERASURE_SECRET": os.urandom(16).hex(),
        "NOTIFICATIONS_PROVIDER_TOKEN": os.urandom(16).hex(),
        "KAFKA_BOOTSTRAP_SERVERS": "kafka.invalid:9093",
        "KAFKA_SECURITY_PROTOCOL": "SSL",
    }


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["-m", "uvicorn", "crm_notifications.main:app", "--port", "0"], id="api"),
        pytest.param(["-m", "crm_notifications.worker"], id="worker"),
    ],
)
def test_a_real_process_refuses_with_one_line_and_a_non_zero_exit(command, tmp_path):
    done = subprocess.run(
        [sys.executable, *command], env=production_environment(), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "refusing to start with CRM_ENVIRONMENT=production: NOTIFICATIONS_WEBHOOK_SECRET is empty or a development default (set it from a "
        "secret)"
    ]
    assert "dev-webhook-secret" not in done.stderr + done.stdout
