"""Dialect-aware bulk `INSERT ... ON CONFLICT DO UPDATE` with commutative merge rules per column.

Rules: "set" keeps the incoming value when it has one (identical on duplicates), "min"/"max" keep the
smallest/largest known value, "keep" never changes a stored value. The same rules merge rows of one
batch in Python first, so a batch never touches a row twice in one statement.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

CHUNK = 2000


def merge_value(rule: str, old, new):
    if rule == "set":
        return new if new is not None else old
    if rule == "keep":
        return old if old is not None else new
    if old is None:
        return new
    if new is None:
        return old
    return min(old, new) if rule == "min" else max(old, new)


def merge_rows(rows: Iterable[dict], key: str, rules: dict[str, str]) -> list[dict]:
    merged: dict = {}
    for row in rows:
        current = merged.get(row[key])
        if current is None:
            merged[row[key]] = dict(row)
            continue
        for column, value in row.items():
            if column != key:
                current[column] = merge_value(rules.get(column, "set"), current.get(column), value)
    return list(merged.values())


def _insert(session: AsyncSession, table: Table):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table), dialect


async def upsert(session: AsyncSession, table: Table, rows: list[dict], key: str, rules: dict[str, str]) -> None:
    """Insert rows (all with the same columns); on a key conflict merge every column by its rule."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != key]
    stmt, dialect = _insert(session, table)
    least, greatest = (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)
    excluded = stmt.excluded
    values = {}
    for column in columns:
        rule = rules.get(column, "set")
        old, new = table.c[column], excluded[column]
        if rule == "set":
            values[column] = func.coalesce(new, old)
        elif rule == "keep":
            values[column] = func.coalesce(old, new)
        elif rule == "min":
            values[column] = least(func.coalesce(old, new), func.coalesce(new, old))
        elif rule == "max":
            values[column] = greatest(func.coalesce(old, new), func.coalesce(new, old))
        elif rule == "replace":
            values[column] = new
        else:
            raise ValueError(rule)
    stmt = stmt.on_conflict_do_update(index_elements=[key], set_=values) if values else stmt.on_conflict_do_nothing(index_elements=[key])
    for start in range(0, len(rows), CHUNK):
        await session.execute(stmt, rows[start : start + CHUNK])


async def insert_ignore(session: AsyncSession, table: Table, rows: list[dict], key: str) -> None:
    if not rows:
        return
    stmt, _ = _insert(session, table)
    stmt = stmt.on_conflict_do_nothing(index_elements=[key])
    for start in range(0, len(rows), CHUNK):
        await session.execute(stmt, rows[start : start + CHUNK])
