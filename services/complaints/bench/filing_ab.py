"""Sequential filings through intake.file_complaint on a fresh PostgreSQL database: filings per second, p50 latency,
the CPU time of this process per filing (the service's Python: ORM, clocks, envelopes, driver) and statements per
filing (BEGIN and COMMIT not counted: the driver sends them without a cursor). Prints one line naming the
crm_complaints it ran; asserts nothing.

    .venv/bin/python services/complaints/bench/filing_ab.py [--filings 150] [--postgres URL]
    PYTHONPATH=<a worktree at another commit>/services/complaints .venv/bin/python services/complaints/bench/filing_ab.py

The second form runs that commit's complaints package with this benchmark (an A/B in one session: alternate them).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from complaints_support import ALL_WEEK, complaint_body, seed_customer, seed_team  # noqa: E402
from crm_common.db import Database  # noqa: E402
from crm_common.migrations import upgrade  # noqa: E402
from crm_complaints import ALEMBIC_INI  # noqa: E402
from crm_complaints.complaints import intake  # noqa: E402
from crm_complaints.complaints.schemas import ComplaintCreate  # noqa: E402
from crm_complaints.settings import ComplaintsSettings  # noqa: E402


async def measure(count: int, admin_url: str) -> str:
    name = f"crm_bench_filing_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = admin_url.rpartition("/")[0] + "/" + name
    try:
        await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
        db = Database(url)
        settings = ComplaintsSettings(database_url=url)
        await seed_customer(db, "cust-1")
        await seed_team(db, "transport", {f"t{i}": ALL_WEEK for i in range(10)})
        statements: list[str] = []
        event.listen(db.engine.sync_engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: statements.append(statement))
        latencies = []
        started, cpu_started = time.perf_counter(), time.process_time()
        for i in range(count):
            began = time.perf_counter()
            async with db.transaction() as session:
                body = complaint_body(order_ids=[f"o{i}"], tracking_numbers=[f"t{i}"])
                await intake.file_complaint(session, ComplaintCreate(**body), settings=settings)
            latencies.append((time.perf_counter() - began) * 1000)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        await db.dispose()
        return (
            f"{intake.__file__}: {count / elapsed:.1f} filings/s, p50 {statistics.median(latencies):.1f} ms, "
            f"CPU {cpu / count * 1000:.2f} ms per filing, "
            f"{len(statements) / count:.1f} statements per filing"
        )
    finally:
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filings", type=int, default=150)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(asyncio.run(measure(args.filings, args.postgres)), flush=True)


if __name__ == "__main__":
    main()
