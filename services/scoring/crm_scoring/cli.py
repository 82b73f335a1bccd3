"""`crm-scoring import-orders FILE.csv` (back-fill), `crm-scoring model-report --calibration-end DATE`, `crm-scoring migrate`."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from crm_common.db import Database, utcnow
from crm_common.events.bounds import EARLIEST, FACT_HORIZON, MAX_MONEY
from crm_scoring.db import migrate
from crm_scoring.scoring import reports, service
from crm_scoring.scoring.ingest import EPOCH, ensure_stubs, resolve_ids
from crm_scoring.scoring.models import orders
from crm_scoring.scoring.upsert import insert_ignore
from crm_scoring.settings import ScoringSettings

REQUIRED = ("customer_id", "order_date", "amount")
OPTIONAL = ("margin", "service_type")
SERVICE_TYPES = {"warehousing", "trunk", "distribution", "express", "cold_chain"}


class UsageError(ValueError):
    """A problem with the command's input or its database: one line for the user, exit code 2."""


def _order_ids(chunk: pd.DataFrame, lines: np.ndarray) -> list[str]:
    """Stable ids (from the line's content and number): importing the same file twice adds nothing."""
    keys = chunk["customer_id"] + "|" + chunk["order_date"].astype(str) + "|" + chunk["amount"].astype(str) + "|" + lines.astype(str)
    return ["import:" + hashlib.sha1(k.encode()).hexdigest()[:24] for k in keys]


def check_header(path: Path) -> list[str]:
    """The file's columns; a missing or unreadable file or a header without the required columns is a UsageError."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a CSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    columns = [c.strip() for c in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise UsageError(
            f"{path}: line 1 must be a header with {', '.join(REQUIRED)}[, {', '.join(OPTIONAL)}]; missing {', '.join(missing)} "
            f"(found: {', '.join(columns) or 'nothing'})"
        )
    return columns


def prepare(chunk: pd.DataFrame, first_line: int, currency: str) -> tuple[list[dict], list[dict]]:
    """(order rows, refused lines): a line without a customer id, a readable date or a non-negative amount is refused
    with its line number and reason; the other lines are imported."""
    chunk = chunk.copy()
    lines = np.arange(len(chunk)) + first_line
    chunk["customer_id"] = chunk["customer_id"].fillna("").astype(str).str.strip()
    dates = pd.to_datetime(chunk["order_date"], utc=True, errors="coerce", format="mixed")
    amount = pd.to_numeric(chunk["amount"], errors="coerce")
    earliest, latest = pd.Timestamp(EARLIEST, tz="UTC"), pd.Timestamp(utcnow().date() + FACT_HORIZON + dt.timedelta(days=1), tz="UTC")
    reasons = [
        (chunk["customer_id"] == "", "no customer_id"),
        (dates.isna(), "order_date is not a date"),
        ((dates < earliest) | (dates >= latest), f"order_date is not between {EARLIEST} and today + {FACT_HORIZON.days} days"),
        (~np.isfinite(amount.fillna(np.nan)), "amount is not a number"),
        (amount < 0, "amount is negative"),
        (amount > float(MAX_MONEY), f"amount is over {MAX_MONEY}"),
    ]
    bad = np.zeros(len(chunk), dtype=bool)
    why = np.full(len(chunk), None, dtype=object)
    for mask, reason in reasons:
        new = np.asarray(mask, dtype=bool) & ~bad
        why[new] = reason
        bad |= new
    refused = [{"line": int(line), "reason": reason} for line, reason in zip(lines[bad], why[bad])]
    keep = ~bad
    chunk, dates, amount, lines = chunk[keep], dates[keep], amount[keep], lines[keep]
    margin = pd.to_numeric(chunk["margin"], errors="coerce") if "margin" in chunk.columns else pd.Series(np.nan, index=chunk.index)
    service_type = (
        chunk["service_type"].where(chunk["service_type"].isin(SERVICE_TYPES))
        if "service_type" in chunk.columns
        else pd.Series(None, index=chunk.index)
    )
    ids = _order_ids(chunk.assign(amount=amount), lines)
    seconds = (dates - pd.Timestamp(EPOCH)).dt.total_seconds().to_numpy()
    out = []
    for oid, cid, when, sec, amt, mar, st in zip(ids, chunk["customer_id"], dates, seconds, amount, margin, service_type):
        out.append(
            {
                "order_id": oid,
                "customer_id": cid,
                "order_date": when.to_pydatetime(),
                "order_day": int(sec // 86400),
                "amount": float(amt),
                "currency": currency,
                "margin": None if pd.isna(mar) else float(mar),
                "service_type": None if pd.isna(st) else st,
            }
        )
    return out, refused


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


async def check_database(db: Database) -> None:
    """A database that cannot be reached or has no scoring tables is a UsageError. The command does not migrate
    (`crm-scoring migrate` does, as the service does at start), so a wrong URL creates nothing."""
    url = db.engine.url.render_as_string(hide_password=True)
    try:
        async with db.engine.connect() as connection:
            migrated = await connection.run_sync(lambda sync: inspect(sync).has_table("orders"))
    except (OSError, SQLAlchemyError) as exc:
        raise UsageError(f"cannot reach the database {url}: {str(exc).strip().splitlines()[0]}") from None
    if not migrated:
        raise UsageError(f"the database {url} has no scoring tables: run `crm-scoring migrate --database-url ...` first")


def count_lines(path: Path) -> int:
    """Data lines of the file (lines after the header), for the progress bar."""
    newlines, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            newlines += block.count(b"\n")
            last = block[-1:]
    return max(0, newlines - 1 + (last != b"\n"))


class _RowsPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed or 0:,.0f} rows/s")


def progress_bar(enabled: bool) -> Progress:
    """Rows done of the total, rows/s and time left, on stderr; silent (disabled) when stderr is not a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RowsPerSecond(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


async def import_orders(
    db: Database,
    settings: ScoringSettings,
    path: Path,
    *,
    chunk_rows: int = 50_000,
    recompute: bool = True,
    as_of: dt.datetime | None = None,
    emit: bool = True,
    progress: bool = False,
) -> dict:
    """Load the file (refusing bad lines, importing the rest), then recompute the population. Returns the summary."""
    check_header(path)
    await check_database(db)
    started = time.perf_counter()
    total, imported = 0, 0
    refused: list[dict] = []
    seen_customers: set[str] = set()
    line = 2  # line 1 is the header
    with progress_bar(progress) as bar:
        task = bar.add_task("importing", total=count_lines(path) if progress else None)
        try:
            reader = pd.read_csv(
                path,
                chunksize=chunk_rows,
                dtype=str,
                usecols=lambda c: c.strip() in (*REQUIRED, *OPTIONAL),
                skip_blank_lines=False,
                encoding="utf-8-sig",
            )
            for chunk in reader:
                chunk.columns = [c.strip() for c in chunk.columns]
                rows, bad = prepare(chunk, line, settings.currency)
                refused.extend(bad)
                line += len(chunk)
                await _store(db, rows, seen_customers)
                total += len(chunk)
                imported += len(rows)
                bar.advance(task, len(chunk))
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"{path}: {str(exc).strip().splitlines()[-1]} (the lines before line {line} are imported; importing the file again "
                "adds none of them twice)"
            ) from None
        loaded_s = time.perf_counter() - started
        result = {
            "rows": total,
            "imported": imported,
            "refused": len(refused),
            "customers": len(seen_customers),
            "load_seconds": round(loaded_s, 3),
            "rows_per_second": round(total / loaded_s) if loaded_s else None,
        }
        if recompute:
            bar.add_task("recomputing every customer's scores", total=None)
            async with db.transaction() as session:
                summary = await service.recompute_population(session, settings, as_of or utcnow(), emit=emit)
            result["recompute_seconds"] = round(time.perf_counter() - started - loaded_s, 3)
            result["events"] = summary["events"]
    result["refused_lines"] = refused[:REFUSED_LISTED]
    if len(refused) > REFUSED_LISTED:
        result["refused_lines_not_listed"] = len(refused) - REFUSED_LISTED
    return result


REFUSED_LISTED = 1000  # refused lines listed in the summary; beyond that they are only counted


async def _store(db: Database, rows: list[dict], seen_customers: set[str]) -> None:
    """One transaction per chunk: merged ids go to their survivor, erased customers' orders are dropped, stubs for new customers."""
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-scoring", description="Scoring service commands: back-fill an order history, report on the model, migrate the database."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    url_help = "database URL (default: SCORING_DATABASE_URL, else sqlite:///var/scoring.db)"
    imp = sub.add_parser(
        "import-orders",
        help="load an order history CSV (customer_id, order_date, amount[, margin, service_type])",
        description="Load an order history CSV, one order per line, refusing bad lines and importing the rest, then recompute every "
        "customer's scores. Prints a JSON summary (rows, customers, refused lines with their numbers). Exit code 0: every "
        "line imported; 1: some lines refused; 2: the file or the database cannot be used (one line on stderr).",
    )
    imp.add_argument(
        "file",
        type=Path,
        help="CSV with a header line: customer_id, order_date (ISO date or date-time), amount (>= 0)[, margin, service_type]",
    )
    imp.add_argument("--database-url", default=None, help=url_help)
    imp.add_argument("--no-recompute", action="store_true", help="load only; the nightly recompute scores later")
    imp.add_argument(
        "--no-events",
        action="store_true",
        help="recompute without announcing score events (CustomerScored, CustomerTierChanged, ChurnRiskRaised)",
    )
    rep = sub.add_parser("model-report", help="fit BG/NBD as of a calibration end date and check it on the holdout period")
    rep.add_argument(
        "--calibration-end", required=True, type=dt.date.fromisoformat, help="last day of the calibration period (YYYY-MM-DD, included)"
    )
    rep.add_argument(
        "--holdout-end", type=dt.date.fromisoformat, default=None, help="last day of the holdout period (default: the last order date)"
    )
    rep.add_argument("--database-url", default=None, help=url_help)
    mig = sub.add_parser("migrate", help="create or upgrade the scoring tables (alembic upgrade head)")
    mig.add_argument("--database-url", default=None, help=url_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = ScoringSettings(**({"database_url": args.database_url} if args.database_url else {}))
    if args.command == "migrate":
        migrate(settings.connection_url())
        print(json.dumps({"migrated": settings.shown_database_url()}))
        return 0

    async def run() -> dict:
        db = Database(settings.connection_url())
        try:
            if args.command == "import-orders":
                return await import_orders(
                    db, settings, args.file, recompute=not args.no_recompute, emit=not args.no_events, progress=sys.stderr.isatty()
                )
            async with db.sessions() as session:
                return await reports.model_report(session, args.calibration_end, args.holdout_end)
        finally:
            await db.dispose()

    try:
        result = asyncio.run(run())
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 1 if result.get("refused") else 0


if __name__ == "__main__":
    raise SystemExit(main())
