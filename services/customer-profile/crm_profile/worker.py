"""Scale-out replica without HTTP: `python -m crm_profile.worker` runs the outbox relay
(one publishing leader per PostgreSQL database; the others wait on the advisory lock)."""
from __future__ import annotations

from crm_common.runtime import run_worker
from crm_profile.main import build_runtime
from crm_profile.settings import ProfileSettings


def main() -> None:
    run_worker(build_runtime(ProfileSettings()))


if __name__ == "__main__":
    main()
