"""`crm-scoring import-orders FILE.csv` (back-fill) and `crm-scoring model-report --calibration-end DATE`."""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from crm_common.db import Database, utcnow
from crm_scoring.db import orders
from crm_scoring.scoring import reports, service
from crm_scoring.scoring.ingest import EPOCH, ensure_stubs, resolve_ids
from crm_scoring.scoring.upsert import insert_ignore
from crm_scoring.settings import ScoringSettings

REQUIRED = ("customer_id", "order_date", "amount")
SERVICE_TYPES = {"warehousing", "trunk", "distribution", "express", "cold_chain"}


class ImportError_(ValueError):
    pass


def _order_ids(chunk: pd.DataFrame, first_line: int) -> list[str]:
    """Stable ids: importing the same file twice adds nothing."""
    keys = chunk["customer_id"] + "|" + chunk["order_date"].astype(str) + "|" + chunk["amount"].astype(str) + "|" + (np.arange(len(chunk)) + first_line).astype(str)
    return ["import:" + hashlib.sha1(k.encode()).hexdigest()[:24] for k in keys]


def prepare(chunk: pd.DataFrame, first_line: int, currency: str) -> list[dict]:
    missing = [c for c in REQUIRED if c not in chunk.columns]
    if missing:
        raise ImportError_(f"missing columns: {', '.join(missing)}")
    chunk = chunk.copy()
    chunk["customer_id"] = chunk["customer_id"].astype(str).str.strip()
    dates = pd.to_datetime(chunk["order_date"], utc=True, errors="coerce")
    amount = pd.to_numeric(chunk["amount"], errors="coerce")
    bad = dates.isna() | amount.isna() | (amount < 0) | (chunk["customer_id"] == "")
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + first_line
        raise ImportError_(f"line {line}: needs a customer_id, a date and a non-negative amount")
    margin = pd.to_numeric(chunk["margin"], errors="coerce") if "margin" in chunk.columns else pd.Series(np.nan, index=chunk.index)
    service_type = chunk["service_type"].where(chunk["service_type"].isin(SERVICE_TYPES)) if "service_type" in chunk.columns else pd.Series(None, index=chunk.index)
    ids = _order_ids(chunk.assign(amount=amount), first_line)
    seconds = (dates - pd.Timestamp(EPOCH)).dt.total_seconds().to_numpy()
    out = []
    for oid, cid, when, sec, amt, mar, st in zip(ids, chunk["customer_id"], dates, seconds, amount, margin, service_type):
        out.append({
            "order_id": oid, "customer_id": cid, "order_date": when.to_pydatetime(), "order_day": int(sec // 86400), "amount": float(amt),
            "currency": currency, "margin": None if pd.isna(mar) else float(mar), "service_type": None if pd.isna(st) else st,
        })
    return out


IMPORT_COLUMNS = ("order_id", "customer_id", "order_date", "order_day", "amount", "currency", "margin", "service_type")


async def bulk_insert_orders(session, rows: list[dict]) -> None:
    """On PostgreSQL one INSERT ... SELECT FROM unnest(arrays) per 20k rows through asyncpg;
    elsewhere the portable bulk upsert. Existing order ids are left alone (re-import adds nothing)."""
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        await insert_ignore(session, orders, rows, "order_id")
        return
    raw = (await connection.get_raw_connection()).driver_connection
    types = ("text", "text", "timestamptz", "int", "float8", "text", "float8", "text")
    arrays = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    sql = f"INSERT INTO orders ({', '.join(IMPORT_COLUMNS)}) SELECT * FROM unnest({arrays}) ON CONFLICT (order_id) DO NOTHING"
    for start in range(0, len(rows), 20_000):
        part = rows[start : start + 20_000]
        await raw.execute(sql, *[[r[c] for r in part] for c in IMPORT_COLUMNS])


async def import_orders(db: Database, settings: ScoringSettings, path: Path, *, chunk_rows: int = 50_000, recompute: bool = True, as_of: dt.datetime | None = None, emit: bool = True) -> dict:
    started = time.perf_counter()
    total = 0
    seen_customers: set[str] = set()
    line = 2  # line 1 is the header
    for chunk in pd.read_csv(path, chunksize=chunk_rows, dtype={"customer_id": str}):
        rows = prepare(chunk, line, settings.currency)
        line += len(chunk)
        async with db.transaction() as session:
            aliases, erased = await resolve_ids(session, {r["customer_id"] for r in rows})
            kept = []
            for r in rows:
                r["customer_id"] = aliases.get(r["customer_id"], r["customer_id"])
                if r["customer_id"] not in erased:
                    kept.append(r)
            await bulk_insert_orders(session, kept)
            fresh = {r["customer_id"] for r in kept} - seen_customers
            await ensure_stubs(session, fresh, utcnow())
            seen_customers |= fresh
        total += len(rows)
    loaded_s = time.perf_counter() - started
    result = {"rows": total, "customers": len(seen_customers), "load_seconds": round(loaded_s, 3), "rows_per_second": round(total / loaded_s) if loaded_s else None}
    if recompute:
        async with db.transaction() as session:
            summary = await service.recompute_population(session, settings, as_of or utcnow(), emit=emit)
        result["recompute_seconds"] = round(time.perf_counter() - started - loaded_s, 3)
        result["events"] = summary["events"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crm-scoring", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import-orders", help="load an order history CSV (customer_id, order_date, amount[, margin, service_type])")
    imp.add_argument("file", type=Path)
    imp.add_argument("--database-url", default=None)
    imp.add_argument("--no-recompute", action="store_true", help="load only; the nightly recompute scores later")
    imp.add_argument("--quiet", action="store_true", help="recompute without announcing score events")
    rep = sub.add_parser("model-report", help="fit BG/NBD as of a calibration end date and check it on the holdout period")
    rep.add_argument("--calibration-end", required=True, type=dt.date.fromisoformat)
    rep.add_argument("--holdout-end", type=dt.date.fromisoformat, default=None)
    rep.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    settings = ScoringSettings(**({"database_url": args.database_url} if args.database_url else {}))

    async def run() -> dict:
        db = Database(settings.database_url)
        try:
            if args.command == "import-orders":
                return await import_orders(db, settings, args.file, recompute=not args.no_recompute, emit=not args.quiet)
            async with db.sessions() as session:
                return await reports.model_report(session, args.calibration_end, args.holdout_end)
        finally:
            await db.dispose()

    try:
        result = asyncio.run(run())
    except (ImportError_, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
