"""`python -m crm_gateway.worker`: the gateway's outbox relay (publishes ingested events), its dashboard read-model
consumer and the purge of old ingested ids, without HTTP."""

from __future__ import annotations

from crm_common.runtime import ServiceRuntime, run_worker
from crm_gateway.runtime import build_runtime
from crm_gateway.settings import GatewaySettings


def runtime_from_environment() -> ServiceRuntime:
    """The runtime as the environment configures it (the `crm.runtimes` entry point: crm-dlq, crm-outbox)."""
    return build_runtime(GatewaySettings())


def main() -> None:
    run_worker(runtime_from_environment())


if __name__ == "__main__":
    main()
