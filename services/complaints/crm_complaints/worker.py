"""Scale-out replica without HTTP: `python -m crm_complaints.worker` runs the outbox relay (one publishing
leader per PostgreSQL database), the consumers (TMS incidents, customer directory, tiers) and the SLA
scheduler. Any number of replicas may run: escalations are claimed with a conditional UPDATE, so a
breach escalates exactly once."""

from __future__ import annotations

from crm_common.runtime import run_worker
from crm_complaints.runtime import ComplaintsRuntime
from crm_complaints.settings import ComplaintsSettings


def build_runtime(settings: ComplaintsSettings | None = None) -> ComplaintsRuntime:
    return ComplaintsRuntime(settings or ComplaintsSettings())


def runtime_from_environment() -> ComplaintsRuntime:
    """The runtime as the environment configures it (the `crm.runtimes` entry point: crm-dlq, crm-outbox)."""
    return build_runtime()


def main() -> None:
    run_worker(runtime_from_environment())


if __name__ == "__main__":
    main()
