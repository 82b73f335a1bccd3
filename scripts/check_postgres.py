"""Exit 0 when the test PostgreSQL server answers, 1 otherwise (used by `make test`)."""

import asyncio
import os
import sys

import asyncpg


async def main() -> int:
    url = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        connection = await asyncpg.connect(url, timeout=5)
    except Exception as exc:
        print(f"PostgreSQL not reachable at {url}: {exc}", file=sys.stderr)
        return 1
    await connection.close()
    return 0


sys.exit(asyncio.run(main()))
