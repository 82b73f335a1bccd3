"""`python -m crm_gateway.worker`: the gateway's outbox relay (publishes ingested events) and its
dashboard read-model consumer, without HTTP."""
from __future__ import annotations

from crm_common.runtime import ServiceRuntime, run_worker
from crm_gateway.readmodels import DashboardReadModel
from crm_gateway.settings import GatewaySettings


def runtime_from_environment() -> ServiceRuntime:
    """The runtime as the environment configures it (the `crm.runtimes` entry point: crm-dlq, crm-outbox)."""
    settings = GatewaySettings()
    return ServiceRuntime(settings, handlers=[DashboardReadModel(shipments=settings.shipments_read_model)])


def main() -> None:
    run_worker(runtime_from_environment())


if __name__ == "__main__":
    main()
