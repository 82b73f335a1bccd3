"""What a service process sets up once (crm_common.runtime.configure_process)."""

import gc

import pytest

from crm_common.runtime import configure_process
from crm_common.settings import ServiceSettings


@pytest.fixture
def restore_gc_thresholds():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_collector_thresholds_come_from_the_settings(restore_gc_thresholds):
    configure_process(ServiceSettings(gc_thresholds=(12345, 11, 12), log_json=False))
    assert gc.get_threshold() == (12345, 11, 12)


def test_the_thresholds_can_be_set_back_to_pythons_defaults_from_the_environment(monkeypatch, restore_gc_thresholds):
    monkeypatch.setenv("SERVICE_GC_THRESHOLDS", "[700, 10, 10]")
    configure_process(ServiceSettings(log_json=False))
    assert gc.get_threshold() == (700, 10, 10)
