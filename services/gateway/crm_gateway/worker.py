"""`python -m crm_gateway.worker`: the gateway's outbox relay without HTTP (publishes ingested events)."""
from __future__ import annotations

from crm_common.runtime import ServiceRuntime, run_worker
from crm_gateway.settings import GatewaySettings


def main() -> None:
    run_worker(ServiceRuntime(GatewaySettings()))


if __name__ == "__main__":
    main()
