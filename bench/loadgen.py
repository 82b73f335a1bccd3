"""Fallback HTTP load generator (used when `wrk` is not installed): asyncio + httpx, N keep-alive connections.

    python bench/loadgen.py spec.json      # spec: base_url, headers, method, connections, duration_s
    paths from $BENCH_PATHS (one per line), bodies from $BENCH_BODIES (optional, one JSON per line)

Runs in its own process so the load does not share an event loop (or a core) with the server.
Prints `LOADJSON {...}` with requests, rps, p50/p90/p99 in ms and errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time


async def main(spec: dict) -> dict:
    import httpx

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    paths = [p for p in open(os.environ["BENCH_PATHS"]).read().splitlines() if p]
    bodies_file = os.environ.get("BENCH_BODIES")
    bodies = [b for b in open(bodies_file).read().splitlines() if b] if bodies_file else []
    latencies: list[float] = []
    errors = 0
    non_2xx = 0
    stop_at = time.perf_counter() + spec["duration_s"]
    counter = 0
    limits = httpx.Limits(max_connections=spec["connections"], max_keepalive_connections=spec["connections"])
    async with httpx.AsyncClient(base_url=spec["base_url"], headers=spec["headers"], limits=limits, timeout=10.0) as client:

        async def worker(offset: int) -> None:
            nonlocal counter, errors, non_2xx
            while time.perf_counter() < stop_at:
                counter += 1
                i = counter + offset
                start = time.perf_counter()
                try:
                    kwargs = {"content": bodies[i % len(bodies)], "headers": {"content-type": "application/json"}} if bodies else {}
                    response = await client.request(spec["method"], paths[i % len(paths)], **kwargs)
                    if response.status_code >= 400:
                        non_2xx += 1
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker(n * 7919) for n in range(spec["connections"])))
        seconds = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")  # noqa: E731
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50_ms": pick(0.5),
        "p90_ms": pick(0.9),
        "p99_ms": pick(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "errors": errors + non_2xx,
        "non_2xx": non_2xx,
    }


if __name__ == "__main__":
    figures = asyncio.run(main(json.load(open(sys.argv[1]))))
    print("LOADJSON " + json.dumps(figures), flush=True)
