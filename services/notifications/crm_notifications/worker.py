"""`python -m crm_notifications.worker`: consumers, outbox relay, dispatcher and scans without HTTP."""

from __future__ import annotations

from crm_common.runtime import run_worker
from crm_notifications.runtime import NotificationsRuntime
from crm_notifications.settings import NotificationsSettings


def runtime_from_environment() -> NotificationsRuntime:
    """The runtime as the environment configures it (the `crm.runtimes` entry point: crm-dlq, crm-outbox)."""
    return NotificationsRuntime(NotificationsSettings())


def main() -> None:
    run_worker(runtime_from_environment())


if __name__ == "__main__":
    main()
