"""The complaints status lookup's database path alone, in one process (no HTTP): what GET /complaints/lookup does
per request (api.lookup_page on an autocommit connection: lookup, page details, JSON encoding), with and without
the pool pre-ping.

    .venv/bin/python bench/lookup_db_path.py [--complaints 20000]

Printed: wall and CPU milliseconds per lookup (500 sequential), lookups/s with 16 concurrent (1,000).
It tells how much of a status query is the service's own database code, before HTTP and the gateway.
"""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import complaints_seed  # noqa: E402
import perfkit  # noqa: E402


async def measure(count: int) -> dict:
    from crm_common.db import Database
    from crm_complaints.complaints import api, service

    agent = service.Actor(id="bench-agent", role="agent")
    out = {}
    async with perfkit.fresh_databases("complaints") as urls:
        sample = await complaints_seed.seed(perfkit.asyncpg_dsn(urls["complaints"]), count)
        for pre_ping in (True, False):
            db = Database(urls["complaints"], pre_ping=pre_ping)

            async def one(tracking: str) -> None:
                async with db.engine.connect() as connection:  # as the route does
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                    page = await api.lookup_page(connection, agent, tracking_number=tracking)
                assert len(page) == 1
                api.json_response(page)

            for t in sample["tracking"][:50]:  # warm-up
                await one(t)
            started, cpu = time.perf_counter(), time.process_time()
            for t in sample["tracking"][:500]:
                await one(t)
            wall_ms = (time.perf_counter() - started) / 500 * 1000
            cpu_ms = (time.process_time() - cpu) / 500 * 1000
            limit = asyncio.Semaphore(16)

            async def limited(t: str) -> None:
                async with limit:
                    await one(t)

            started = time.perf_counter()
            await asyncio.gather(*(limited(t) for t in sample["tracking"][:1000]))
            rate = 1000 / (time.perf_counter() - started)
            await db.dispose()
            out["pre-ping" if pre_ping else "no pre-ping"] = {"wall_ms": wall_ms, "cpu_ms": cpu_ms, "concurrent_per_s": rate}
    return out


def run(args) -> dict:
    figures = asyncio.run(measure(args.complaints))
    rows = []
    for name, f in figures.items():
        rows.append(perfkit.row(f"lookup DB path CPU per lookup, {name}", f["cpu_ms"], unit="ms"))
        rows.append(perfkit.row(f"lookup DB path wall per lookup (sequential), {name}", f["wall_ms"], unit="ms"))
        rows.append(perfkit.row(f"lookup DB path, 16 concurrent, {name}", f["concurrent_per_s"], unit="lookups/s"))
    return perfkit.result("lookup_db_path", rows, figures=figures)


def main(argv=None) -> int:
    parser = perfkit.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=20_000)
    perfkit.emit(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
