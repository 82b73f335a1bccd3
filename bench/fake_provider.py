"""A fake SMS/push provider on loopback for bench/notification_fanout.py (the contract of
crm_notifications.channels.http_provider): POST /v1/messages -> {"id", "status": "sent"}; GET /count."""

import itertools

from fastapi import FastAPI, Request

app = FastAPI()
_ids = itertools.count(1)
_received = {"n": 0}


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.post("/v1/messages")
async def messages(request: Request) -> dict:
    await request.body()
    _received["n"] += 1
    return {"id": next(_ids), "status": "sent"}


@app.get("/count")
async def count() -> dict:
    return _received
