"""Helpers of the performance tests: bulk rows by SQL, statement capture, EXPLAIN plans.

* `fill(dsn, table, n, **exprs)`: INSERT ... SELECT FROM generate_series(1, n) AS g; every NOT NULL column
  without a default gets a value of its type (`exprs` overrides any column with an SQL expression of `g`),
  then ANALYZE, so the planner sees the real row count.
* `StatementLog(engine)`: the SQL statements an engine sends (SQLAlchemy `before_cursor_execute`).
* `plan(dsn, statement, parameters)`: EXPLAIN (FORMAT JSON) of a captured statement with its parameters;
  `scans(plan)`: [(node type, relation, index)] of every scan node.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import event

from crm_common.db import AsyncpgReader, asyncpg_sql

INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Heap Scan"})


def dsn_of(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _default_expression(name: str, data_type: str, max_length: int | None) -> str:
    if data_type in ("character varying", "text", "character"):
        expr = f"'{name[:4]}' || g"
        return f"left({expr}, {max_length})" if max_length else expr
    if data_type in ("integer", "bigint", "smallint"):
        return "g"
    if data_type in ("numeric", "double precision", "real"):
        return "g"
    if data_type == "boolean":
        return "false"
    if data_type.startswith("timestamp"):
        return "now() - g * interval '1 minute'"
    if data_type == "date":
        return "current_date - (g % 1000)"
    if data_type.startswith("time"):
        return "time '09:00'"
    if data_type in ("json", "jsonb"):
        return f"'{{}}'::{data_type}"
    raise ValueError(f"no default value for {name} of type {data_type}")


async def fill(dsn: str, table: str, n: int, *, start: int = 1, **exprs: str) -> None:
    connection = await asyncpg.connect(dsn_of(dsn))
    try:
        columns = await connection.fetch(
            "SELECT column_name, data_type, is_nullable, column_default, character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            table,
        )
        if not columns:
            raise ValueError(f"no table {table}")
        names, values = [], []
        for column in columns:
            name = column["column_name"]
            if name in exprs:
                names.append(f'"{name}"')
                values.append(exprs[name])
            elif column["is_nullable"] == "NO" and column["column_default"] is None:
                names.append(f'"{name}"')
                values.append(_default_expression(name, column["data_type"], column["character_maximum_length"]))
        unknown = set(exprs) - {c["column_name"] for c in columns}
        if unknown:
            raise ValueError(f"{table} has no column(s) {sorted(unknown)}")
        await connection.execute(
            f'INSERT INTO "{table}" ({", ".join(names)}) SELECT {", ".join(values)} FROM generate_series({start}, {start + n - 1}) AS g'
        )
        await connection.execute(f'ANALYZE "{table}"')
    finally:
        await connection.close()


class StatementLog:
    """Records every statement an (async) engine sends while active, and those of the asyncpg read path
    (crm_common.db.AsyncpgReader, which bypasses the engine: Database.read() on PostgreSQL)."""

    def __init__(self, engine):
        self.sync_engine = getattr(engine, "sync_engine", engine)
        self.statements: list[tuple[str, Any]] = []
        self._reader_rows = None

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append((statement, parameters))

    def __enter__(self) -> StatementLog:
        event.listen(self.sync_engine, "before_cursor_execute", self._record)
        self._reader_rows = original = AsyncpgReader.rows
        log = self

        async def recorded_rows(reader, statement, params=None):
            sql, names, fixed = asyncpg_sql(statement)
            log.statements.append((sql, [(params or {}).get(name, fixed.get(name)) for name in names]))
            return await original(reader, statement, params)

        AsyncpgReader.rows = recorded_rows
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.sync_engine, "before_cursor_execute", self._record)
        AsyncpgReader.rows = self._reader_rows

    @property
    def count(self) -> int:
        return len(self.statements)

    def selects(self, *, touching: str | None = None) -> list[tuple[str, Any]]:
        out = []
        for statement, parameters in self.statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            if touching is not None and touching not in statement:
                continue
            out.append((statement, parameters))
        return out


@contextmanager
def counting(engine):
    log = StatementLog(engine)
    with log:
        yield log


async def plan(dsn: str, statement: str, parameters: Any = ()) -> dict:
    connection = await asyncpg.connect(dsn_of(dsn))
    try:
        params = list(parameters or ())
        raw = await connection.fetchval("EXPLAIN (FORMAT JSON) " + statement, *params)
    finally:
        await connection.close()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def scans(node: dict) -> list[tuple[str, str | None, str | None]]:
    found = []
    if "Relation Name" in node or node.get("Node Type", "").endswith("Scan"):
        found.append((node["Node Type"], node.get("Relation Name"), node.get("Index Name")))
    for child in node.get("Plans", []) or []:
        found.extend(scans(child))
    return found


def bitmap_indexes(node: dict) -> list[str]:
    found = [node["Index Name"]] if node.get("Node Type") == "Bitmap Index Scan" else []
    for child in node.get("Plans", []) or []:
        found.extend(bitmap_indexes(child))
    return found


def describe(node: dict, depth: int = 0) -> str:
    line = (
        "  " * depth
        + node["Node Type"]
        + (f" on {node['Relation Name']}" if "Relation Name" in node else "")
        + (f" using {node['Index Name']}" if "Index Name" in node else "")
    )
    return "\n".join([line] + [describe(child, depth + 1) for child in node.get("Plans", []) or []])


def _used_indexes(node: dict, table: str) -> set[str]:
    used: set[str] = set()
    if node.get("Relation Name") == table:
        if node.get("Index Name"):
            used.add(node["Index Name"])
        used.update(bitmap_indexes(node))
    for child in node.get("Plans", []) or []:
        used |= _used_indexes(child, table)
    return used


async def assert_indexed(dsn: str, statement: str, parameters: Any, table: str, *, indexes: set[str] | None = None) -> dict:
    """The plan reads `table` only through an index (Index/Index Only/Bitmap Heap Scan), never a Seq Scan;
    with `indexes`, through one of those."""
    tree = await plan(dsn, statement, parameters)
    on_table = [s for s in scans(tree) if s[1] == table]
    text = describe(tree)
    assert on_table, f"{table} not in the plan:\n{text}\n{statement}"
    assert all(kind in INDEX_SCANS for kind, _, _ in on_table), f"{table} is not read through an index:\n{text}\n{statement}"
    if indexes is not None:
        used = _used_indexes(tree, table)
        assert used & indexes, f"{table} read through {sorted(used)}, expected one of {sorted(indexes)}:\n{text}"
    return tree
