"""Relay, consumer, rescoring and the scheduled recompute without HTTP, for scale-out replicas: `python -m crm_scoring.worker`.

Replicas share the consumer group `scoring`; Kafka spreads the partitions over them.
"""

from __future__ import annotations

from crm_common.runtime import run_worker
from crm_scoring.runtime import ScoringRuntime, build_runtime
from crm_scoring.settings import ScoringSettings


def runtime_from_environment() -> ScoringRuntime:
    """The runtime as the environment configures it (the `crm.runtimes` entry point: crm-dlq, crm-outbox)."""
    return build_runtime(ScoringSettings())


def main() -> None:
    run_worker(runtime_from_environment())


if __name__ == "__main__":
    main()
