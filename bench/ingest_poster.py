"""The TMS side of bench/ingest_e2e.py, in its own process: POST events in batches to the gateway.

    python bench/ingest_poster.py spec.json     # spec: base_url, api_key, items_file, batch, concurrency, out_file[, rate]

Without `rate`, `concurrency` connections post the batches one after another as fast as the gateway answers (closed
loop). With `rate` (events/s), batch i is due at start + i * batch / rate whatever the answers do (open loop, what a
TMS posting at a steady rate does); its `sent_at` is then that due time, so a batch delayed by a slow gateway or a
busy connection counts its wait in every lag measured from it (no coordinated omission).

Writes out_file: one JSON line per batch {"sent_at": epoch seconds, "done_at", "status", "accepted", "duplicates",
"rejected", "first": index of its first item, "n", "late_s": how late the request started (open loop)}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def main(spec: dict) -> None:
    import httpx

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    items = json.load(open(spec["items_file"]))
    batch = spec["batch"]
    starts = list(range(0, len(items), batch))
    bodies = {start: json.dumps(items[start : start + batch]).encode() for start in starts}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for start in starts:
        queue.put_nowait(start)
    out: list[dict] = []
    headers = {"X-API-Key": spec["api_key"], "content-type": "application/json"}
    limits = httpx.Limits(max_connections=spec["concurrency"], max_keepalive_connections=spec["concurrency"])
    async with httpx.AsyncClient(base_url=spec["base_url"], headers=headers, limits=limits, timeout=60.0) as client:

        async def worker() -> None:
            while not queue.empty():
                start = queue.get_nowait()
                for _attempt in range(20):
                    sent_at = time.time()
                    response = await client.post("/api/v1/events", content=bodies[start])
                    if response.status_code == 429:  # the gateway's rate limit: wait as told
                        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                        continue
                    break
                body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
                out.append(
                    {
                        "sent_at": sent_at,
                        "done_at": time.time(),
                        "status": response.status_code,
                        "accepted": body.get("accepted", 0),
                        "duplicates": body.get("duplicates", 0),
                        "rejected": body.get("rejected", 0),
                        "first": start,
                        "n": min(batch, len(items) - start),
                    }
                )

        async def due(start: int, at: float) -> None:
            late = time.time() - at
            response = await client.post("/api/v1/events", content=bodies[start])
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            out.append(
                {
                    "sent_at": at,
                    "done_at": time.time(),
                    "status": response.status_code,
                    "accepted": body.get("accepted", 0),
                    "duplicates": body.get("duplicates", 0),
                    "rejected": body.get("rejected", 0),
                    "first": start,
                    "n": min(batch, len(items) - start),
                    "late_s": late,
                }
            )

        if spec.get("rate"):
            interval = batch / spec["rate"]
            first_due = time.time() + 0.1
            tasks = []
            for index, start in enumerate(starts):
                at = first_due + index * interval
                await asyncio.sleep(max(0.0, at - time.time()))
                tasks.append(asyncio.ensure_future(due(start, at)))
            await asyncio.gather(*tasks)
        else:
            await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    with open(spec["out_file"], "w") as handle:
        for line in out:
            handle.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    asyncio.run(main(json.load(open(sys.argv[1]))))
