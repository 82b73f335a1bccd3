"""Relay and consumers without HTTP, for scale-out replicas: `python -m crm_scoring.worker`.

Replicas share the consumer group `scoring`; Kafka spreads the partitions over them.
"""
from __future__ import annotations

from crm_common.runtime import run_worker
from crm_scoring.main import build_runtime
from crm_scoring.settings import ScoringSettings


def main() -> None:
    run_worker(build_runtime(ScoringSettings()))


if __name__ == "__main__":
    main()
