"""Promise 8, the end-to-end acceptance run: the real broker (Tansu), every service and the gateway on
fresh PostgreSQL databases with their relays and consumers, a generator sending logistics events and
complaints with unique ids through the gateway (a TMS token, an agent token; clients that retry and
sometimes send again), while faults are injected at random (broker paused, a consumer task killed
and restarted, a service runtime replaced by a new one). At the end every service's state must
equal an oracle computed from the generator's inputs alone; the run prints events sent, applied,
duplicates absorbed and lost (must be 0).
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest

from crm_devbroker.testing import OUTPUT_DIR, wait_until
from e2e_support import (
    Inputs,
    Platform,
    diagnostics,
    duplicates_absorbed_by_inboxes,
    file_complaints,
    inject_faults,
    register_customers,
    report,
    scalar_rows,
    send_orders,
    wait_for_oracle,
)


async def acceptance_run(
    database_factory,
    kafka_settings,
    local_broker,
    *,
    customers: int,
    events: int,
    complaints: int,
    duration_s: float,
    pause_s: tuple[float, float],
    every_s: tuple[float, float],
    drain_timeout_s: float,
    label: str,
    settle_s: float = 4.0,
) -> None:
    seed = int(os.environ.get("E2E_SEED", random.randrange(10**6)))
    generator, chaos = random.Random(seed), random.Random(seed + 1)
    started = time.monotonic()
    platform = await Platform.start(database_factory, kafka_settings, "postgres")
    inputs = Inputs()
    inbox_duplicates_before = duplicates_absorbed_by_inboxes()
    try:
        await register_customers(platform, inputs, customers, generator)

        async def directories_know_everyone():  # complaints resolve the customer in their own directory (fed by Kafka)
            rows = await scalar_rows(platform.db("complaints"), "SELECT COUNT(*) FROM directory_customers")
            return rows[0][0] >= customers

        await wait_until(directories_know_everyone, timeout_s=60, interval_s=0.2)
        stop = asyncio.Event()
        faults = asyncio.create_task(
            inject_faults(
                platform,
                local_broker,
                chaos,
                stop,
                pause_s=pause_s,
                every_s=every_s,
                settle_s=float(os.environ.get("E2E_SETTLE_S", settle_s)),
            )
        )
        try:
            await asyncio.gather(
                send_orders(platform, inputs, events, generator, duration_s=duration_s),
                file_complaints(platform, inputs, complaints, generator, duration_s=duration_s),
            )
        finally:
            stop.set()
            await faults
        seen, problems = await wait_for_oracle(platform, inputs, drain_timeout_s)
        if problems:
            problems.append(await diagnostics(platform))
        text = report(inputs, seen, platform, duplicates_absorbed_by_inboxes() - inbox_duplicates_before, time.monotonic() - started)
        text += f"\n  seed: {seed} (E2E_SEED={seed} repeats the inputs; fault timing still varies)"
        print(text)
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUTPUT_DIR / f"acceptance-{label}.txt").write_text(text + "\n" + "\n".join(problems) + "\n")
        kinds = {kind.split()[0] for kind in platform.faults}
        if not os.environ.get("E2E_FAULTS"):
            assert kinds >= ({"broker", "kill", "restart"} if local_broker is not None else {"kill", "restart"}), platform.faults
        assert not problems, "\n".join(problems)
    finally:
        await platform.stop()


async def test_acceptance_run_small(database_factory, kafka_settings, local_broker, postgres_available):
    """The same run, small enough for `make test` (about a minute)."""
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable")
    await acceptance_run(
        database_factory,
        kafka_settings,
        local_broker,
        customers=6,
        events=240,
        complaints=12,
        duration_s=24,
        pause_s=(1.0, 2.0),
        every_s=(0.5, 1.5),
        drain_timeout_s=float(os.environ.get("E2E_DRAIN_S", 120)),
        label="small",
    )


@pytest.mark.slow
async def test_acceptance_run_full(database_factory, kafka_settings, local_broker, postgres_available):
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable")
    await acceptance_run(
        database_factory,
        kafka_settings,
        local_broker,
        customers=30,
        events=3000,
        complaints=150,
        duration_s=90,
        pause_s=(3.0, 8.0),
        every_s=(2.0, 5.0),
        drain_timeout_s=300,
        label="full",
    )
