"""Replica without HTTP: `python -m crm_profile.worker` runs the consumer of scoring's announcements (the account
manager's workspace) and the outbox relay (one publishing leader per PostgreSQL database; the others wait on the
advisory lock)."""

from __future__ import annotations

from crm_common.runtime import ServiceRuntime, run_worker
from crm_profile.runtime import build_runtime
from crm_profile.settings import ProfileSettings


def runtime_from_environment() -> ServiceRuntime:
    """The runtime as the environment configures it (the `crm.runtimes` entry point: crm-dlq, crm-outbox)."""
    return build_runtime(ProfileSettings())


def main() -> None:
    run_worker(runtime_from_environment())


if __name__ == "__main__":
    main()
