"""`python -m crm_notifications.worker`: consumers, outbox relay, dispatcher and scans without HTTP."""
from __future__ import annotations

from crm_common.runtime import run_worker
from crm_notifications.runtime import NotificationsRuntime
from crm_notifications.settings import NotificationsSettings


def main() -> None:
    run_worker(NotificationsRuntime(NotificationsSettings()))


if __name__ == "__main__":
    main()
