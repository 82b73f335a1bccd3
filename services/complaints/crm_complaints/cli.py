"""`crm-complaints rebuild-clock-history`: the one-off heal of SLA clocks stored before migration 0004 (see
crm_complaints.complaints.clock_history). The database is COMPLAINTS_DATABASE_URL, as for the service."""

from __future__ import annotations

import argparse
import asyncio

from crm_common.db import Database
from crm_complaints.complaints.clock_history import rebuild_stretches
from crm_complaints.settings import ComplaintsSettings


async def _rebuild_clock_history() -> int:
    settings = ComplaintsSettings()
    db = Database(settings.connection_url())
    try:
        report = await rebuild_stretches(db, settings)
    finally:
        await db.dispose()
    print(
        f"clock histories rebuilt: {report.rebuilt}; not reproduced from the timeline (left unknown): "
        f"{len(report.not_reproduced)} {report.not_reproduced or ''}".rstrip()
    )
    return 0


COMMANDS = {"rebuild-clock-history": _rebuild_clock_history}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crm-complaints", description="Maintenance commands of the complaint service.")
    parser.add_argument(
        "command",
        choices=sorted(COMMANDS),
        help="rebuild-clock-history: replay the timeline of clocks stored without their stretches (after migration 0004)",
    )
    args = parser.parse_args(argv)
    return asyncio.run(COMMANDS[args.command]())


if __name__ == "__main__":
    raise SystemExit(main())
