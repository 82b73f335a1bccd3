"""The HTTP baseline: a minimal FastAPI endpoint returning a constant, served with the same uvicorn settings
(uvloop, httptools, one worker, access log off) as the services. `uvicorn baseline_app:app`."""
from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.get("/constant")
async def constant() -> dict:
    return {"status": "in_progress", "number": "C000000001"}
