"""The HTTP baseline: a minimal FastAPI endpoint returning a constant, served with the same uvicorn settings
(uvloop, httptools, one worker, access log off) as the services. `uvicorn baseline_app:app`.

It also stands in for the complaints service in the status query's ceiling run (bench/status_query.py): the
gateway proxies `GET /complaints/lookup` to it, and it answers with a constant body, by default the bytes of a
real lookup answer captured in the same run (file named by $BASELINE_LOOKUP_BODY), so that the ceiling moves
the same number of bytes as the real query but touches no database.
"""

import os
from pathlib import Path

from fastapi import FastAPI, Response

app = FastAPI()

_body_file = os.environ.get("BASELINE_LOOKUP_BODY")
LOOKUP_BODY = (
    Path(_body_file).read_bytes() if _body_file else b'[{"complaint":{"status":"in_progress","number":"C000000001"},"timeline":[]}]'
)


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.get("/constant")
async def constant() -> dict:
    return {"status": "in_progress", "number": "C000000001"}


@app.get("/complaints/lookup")
async def constant_lookup() -> Response:
    return Response(LOOKUP_BODY, media_type="application/json")
