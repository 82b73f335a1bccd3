"""Open-loop HTTP load: requests start on a fixed schedule, whatever the server's answers do.

    python bench/openloop.py spec.json
    spec: base_url, headers, method, rate (requests/s of this process), duration_s, phase_s, connections, out (file)
    paths from $BENCH_PATHS (one per line), bodies from $BENCH_BODIES (optional, one JSON per line)

Request i is due at start + phase_s + i / rate. Its latency is measured from that due time, not from when it
was actually sent, so a slow answer that delays later requests counts against them too (no coordinated
omission: a closed-loop generator would simply send less while the server stalls). How late the generator itself
started each request is recorded apart (`send_lag`), so a saturated generator shows instead of hiding in the
server's figures. perfkit.open_loop runs several of these processes with the rate split between them and merges
their latencies. The client is aiohttp with a bounded keep-alive pool: a request waiting for a free connection is
queueing, and that wait is part of its latency.
"""

from __future__ import annotations

import array
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit  # noqa: E402


async def run(spec: dict) -> dict:
    import aiohttp

    paths = [p for p in open(os.environ["BENCH_PATHS"]).read().splitlines() if p]
    bodies_file = os.environ.get("BENCH_BODIES")
    bodies = [b.encode() for b in open(bodies_file).read().splitlines() if b] if bodies_file else []
    method = spec.get("method", "GET")
    headers = dict(spec.get("headers") or {})
    if bodies:
        headers.setdefault("Content-Type", "application/json")
    interval = 1.0 / spec["rate"]
    total = max(1, int(spec["rate"] * spec["duration_s"]))
    latencies = array.array("d")
    send_lags = array.array("d")
    outcome = {"ok": 0, "non_2xx": 0, "errors": 0}
    connector = aiohttp.TCPConnector(limit=spec.get("connections", 256), ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=spec.get("timeout_s", 30.0))
    async with aiohttp.ClientSession(spec["base_url"], connector=connector, timeout=timeout, headers=headers) as session:

        async def one(index: int, due: float) -> None:
            send_lags.append(time.perf_counter() - due)
            body = bodies[index % len(bodies)] if bodies else None
            try:
                async with session.request(method, paths[index % len(paths)], data=body) as response:
                    await response.read()
                    outcome["ok" if response.status < 300 else "non_2xx"] += 1
            except (TimeoutError, aiohttp.ClientError, OSError):
                outcome["errors"] += 1
            latencies.append(time.perf_counter() - due)

        start = time.perf_counter() + 0.2 + spec.get("phase_s", 0.0)
        tasks = []
        for index in range(total):
            due = start + index * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(index, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    with open(spec["out"], "wb") as out:
        latencies.tofile(out)
    return {
        "scheduled": total,
        "elapsed_s": elapsed,
        **outcome,
        "send_lag_p99_ms": 1000 * perfkit.percentile(list(send_lags), 0.99) if send_lags else 0.0,
    }


def main() -> int:
    spec = json.load(open(sys.argv[1]))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    print("OPENLOOPJSON " + json.dumps(asyncio.run(run(spec))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
