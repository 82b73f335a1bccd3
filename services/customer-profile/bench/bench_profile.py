"""Customer-profile figures: create throughput and list/search latency through the in-process API.

    .venv/bin/python services/customer-profile/bench/bench_profile.py [--customers 2000] [--kinds sqlite,postgres]

Prints figures; asserts nothing. PostgreSQL comes from TEST_POSTGRES_URL (default local trust auth).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid

import asyncpg
import httpx

from crm_common.migrations import upgrade
from crm_devbroker.testing import edge_auth
from crm_profile import ALEMBIC_INI
from crm_profile.main import create_app
from crm_profile.settings import ProfileSettings

POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def body(i: int, run: str) -> dict:
    return {
        "name": f"Bench Shipper {run} {i:06d} Co., Ltd.",
        "industry": ["retail", "electronics", "fresh food", "machinery"][i % 4],
        "region": ["East China", "South China", "North China"][i % 3],
        "status": "active",
        "account_manager": f"am-{i % 20}",
        "tax_id": f"91{run.upper()}{i:08d}",
        "tags": [f"t{i % 10}"],
        "contacts": [
            {"name": f"Person {i}", "phone": f"+86 137 {i // 10000:04d} {i % 10000:04d}", "email": f"p{i}.{run}@bench.example.com"}
        ],
    }


def percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000  # noqa: E731
    return f"p50 {p(0.5):6.1f} ms  p95 {p(0.95):6.1f} ms  (n={len(samples)})"


async def timed(client: httpx.AsyncClient, url: str, params: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    response = await client.get(url, params=params)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed, response.json()


async def run(kind: str, customers: int) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        name = None
    else:
        name = f"crm_profile_bench_{uuid.uuid4().hex[:8]}"
        connection = await asyncpg.connect(POSTGRES)
        await connection.execute(f'CREATE DATABASE "{name}"')
        await connection.close()
        url = POSTGRES.rpartition("/")[0] + "/" + name
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    app = create_app(ProfileSettings(database_url=url, run_outbox_relay=False), start_background=False)
    run_id = uuid.uuid4().hex[:6]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", auth=edge_auth(app)) as client:
            start = time.perf_counter()
            for i in range(customers):
                (await client.post("/customers", json=body(i, run_id))).raise_for_status()
            elapsed = time.perf_counter() - start
            print(f"[{kind}] create {customers} customers (sequential, dedup check + outbox): {customers / elapsed:7.1f}/s")

            pages, cursor, samples = 0, None, []
            while True:
                t, data = await timed(client, "/customers", {"limit": 100} | ({"cursor": cursor} if cursor else {}))
                samples.append(t)
                pages += 1
                cursor = data["next_cursor"]
                if not cursor:
                    break
            print(f"[{kind}] list page of 100, all {pages} pages:      {percentiles(samples)}")
            samples = [(await timed(client, "/customers", {"tag": "t3", "region": "East China", "limit": 50}))[0] for _ in range(30)]
            print(f"[{kind}] list filtered (tag+region), 50:      {percentiles(samples)}")
            for label, params in [
                ("phone", lambda i: {"phone": f"137{i // 10000:04d}{i % 10000:04d}"}),
                ("email", lambda i: {"email": f"P{i}.{run_id}@bench.example.com"}),
                ("tax id", lambda i: {"tax_id": f"91{run_id.upper()}{i:08d}"}),
                ("name substring", lambda i: {"name": f"{run_id} {i:06d}"}),
                ("q (any field)", lambda i: {"q": f"137{i // 10000:04d}{i % 10000:04d}"}),
            ]:
                samples = []
                for i in range(0, customers, max(1, customers // 50)):
                    t, data = await timed(client, "/customers/search", params(i))
                    assert len(data["items"]) == 1, (label, data)
                    samples.append(t)
                print(f"[{kind}] search by {label:15s}:            {percentiles(samples)}")
    finally:
        await app.state.runtime.stop()
        if name:
            connection = await asyncpg.connect(POSTGRES)
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--kinds", default="sqlite,postgres")
    args = parser.parse_args()
    for kind in args.kinds.split(","):
        asyncio.run(run(kind, args.customers))


if __name__ == "__main__":
    main()
