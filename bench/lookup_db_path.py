"""The complaints status lookup's database path alone, in one process (no HTTP): what GET /complaints/lookup does
per request (api.lookup_page: lookup, page details, JSON encoding), three ways in the same run: through
Database.read() (what the service does: asyncpg straight, a pool of its own, array parameters), and through
SQLAlchemy on an autocommit connection of the engine's pool, with and without the pool pre-ping (before 2026-11-26 PM).

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
    from crm_common.db import Database, SessionReader
    from crm_complaints.complaints import access, api

    agent = access.Actor(id="bench-agent", role="agent")
    out = {}
    async with perfkit.fresh_databases("complaints") as urls:
        sample = await complaints_seed.seed(perfkit.asyncpg_dsn(urls["complaints"]), count)
        for variant in ("Database.read (asyncpg)", "SQLAlchemy, pre-ping", "SQLAlchemy, no pre-ping"):
            db = Database(urls["complaints"], pre_ping=variant == "SQLAlchemy, pre-ping")

            async def page_of(tracking: str, variant: str = variant, db: Database = db) -> list:
                if variant.startswith("Database.read"):
                    return await db.read(lambda reader: api.lookup_page(reader, agent, tracking_number=tracking))
                async with db.engine.connect() as connection:
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                    return await api.lookup_page(SessionReader(connection), agent, tracking_number=tracking)

            async def one(tracking: str) -> None:
                page = await page_of(tracking)
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

            async def limited(t: str, limit: asyncio.Semaphore = limit) -> None:
                async with limit:
                    await one(t)

            started = time.perf_counter()
            await asyncio.gather(*(limited(t) for t in sample["tracking"][:1000]))
            rate = 1000 / (time.perf_counter() - started)
            await db.dispose()
            out[variant] = {"wall_ms": wall_ms, "cpu_ms": cpu_ms, "concurrent_per_s": rate}
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
