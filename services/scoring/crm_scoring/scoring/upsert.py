"""Dialect-aware bulk `INSERT ... ON CONFLICT DO UPDATE` with commutative merge rules per column.

Rules: "set" keeps the incoming value when it has one (identical on duplicates), "min"/"max" keep the
smallest/largest known value, "keep" never changes a stored value. The same rules merge rows of one
batch in Python first, so a batch never touches a row twice in one statement.

On PostgreSQL a batch is one statement whatever its size: each column travels as one array parameter
(`INSERT ... SELECT * FROM unnest($1::type[], ...) ON CONFLICT ...`), so the SQL text is the same for every
batch (prepared once per connection) and the cost per row is that of building the arrays. SQLite gets the
portable multi-row statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
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
    """One row per key, merged by the rules. A NULL (or absent) value is "unknown" for every rule, so it never
    changes what another row of the key said."""
    merged: dict = {}
    for row in rows:
        current = merged.get(row[key])
        if current is None:
            merged[row[key]] = dict(row)
            continue
        for column, value in row.items():
            if value is not None and column != key:
                current[column] = merge_value(rules.get(column, "set"), current.get(column), value)
    return list(merged.values())


def row_columns(rows: Sequence[dict], key: str, rules: dict[str, str] | None) -> tuple[str, ...]:
    """The statement's columns: the key, those of the first row, then every column with a rule (rows may be
    sparse: a missing column is NULL)."""
    return tuple(dict.fromkeys([key, *rows[0], *(rules or ())]))


def _insert(session: AsyncSession, table: Table):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table), dialect


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# ----------------------------------------------------------------------------- PostgreSQL: arrays + unnest
_MERGE_SQL = {
    "set": "COALESCE(EXCLUDED.{c}, {t}.{c})",
    "keep": "COALESCE({t}.{c}, EXCLUDED.{c})",
    "min": "LEAST(COALESCE({t}.{c}, EXCLUDED.{c}), COALESCE(EXCLUDED.{c}, {t}.{c}))",
    "max": "GREATEST(COALESCE({t}.{c}, EXCLUDED.{c}), COALESCE(EXCLUDED.{c}, {t}.{c}))",
    "replace": "EXCLUDED.{c}",
}


@lru_cache(maxsize=256)
def unnest_insert_sql(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    key: str,
    on_conflict: tuple[tuple[str, str], ...] | None,
    returning: str | None = None,
) -> str:
    """`INSERT INTO table (columns) SELECT * FROM unnest($1::type[], ...) ON CONFLICT (key) ...`.

    on_conflict: (column, rule) pairs merged on a key conflict; None or empty: DO NOTHING."""
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(f"${i + 1}::{table.c[c].type.compile(dialect=dialect)}[]" for i, c in enumerate(columns))
    names = ", ".join(quote(c) for c in columns)
    sql = f"INSERT INTO {quote(table.name)} ({names}) SELECT * FROM unnest({arrays}) ON CONFLICT ({quote(key)}) "
    if on_conflict:
        for _, rule in on_conflict:
            if rule not in _MERGE_SQL:
                raise ValueError(rule)
        sets = ", ".join(f"{quote(c)} = " + _MERGE_SQL[rule].format(t=quote(table.name), c=quote(c)) for c, rule in on_conflict)
        sql += f"DO UPDATE SET {sets}"
    else:
        sql += "DO NOTHING"
    if returning:
        sql += f" RETURNING {quote(returning)}"
    return sql


def column_arrays(dialect: Dialect, table: Table, columns: Sequence[str], rows: Sequence[dict]) -> list[list]:
    """One list per column, each value passed through the column type's bind processing (e.g. UTCDateTime
    refuses naive datetimes and converts to UTC), as the ORM-less SQLAlchemy path would."""
    arrays = []
    for column in columns:
        values = [row.get(column) for row in rows]
        process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            values = [None if v is None else process(v) for v in values]
        arrays.append(values)
    return arrays


async def execute_unnest(session: AsyncSession, sql: str, arrays: list[list]):
    """Run a statement of unnest_insert_sql in the session's transaction (the driver's prepared-statement cache
    keeps it parsed); returns the driver result."""
    connection = await session.connection()
    return await connection.exec_driver_sql(sql, tuple(arrays))


async def _upsert_postgresql(
    session: AsyncSession, table: Table, rows: list[dict], key: str, rules: dict[str, str] | None, returning: str | None = None
):
    dialect = session.get_bind().dialect
    columns = row_columns(rows, key, rules)
    on_conflict = tuple((c, rules.get(c, "set")) for c in columns if c != key) if rules is not None else None
    sql = unnest_insert_sql(dialect, table, columns, key, on_conflict, returning)
    return await execute_unnest(session, sql, column_arrays(dialect, table, columns, rows))


# ----------------------------------------------------------------------------- the portable statements
async def upsert(session: AsyncSession, table: Table, rows: list[dict], key: str, rules: dict[str, str]) -> None:
    """Insert rows; on a key conflict merge every column by its rule (default "set"). Columns absent from a row
    are NULL there."""
    if not rows:
        return
    if _is_postgresql(session):
        await _upsert_postgresql(session, table, rows, key, rules)
        return
    all_columns = row_columns(rows, key, rules)
    rows = [{c: row.get(c) for c in all_columns} for row in rows]
    columns = all_columns[1:]
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


async def insert_ignore(session: AsyncSession, table: Table, rows: list[dict], key: str, *, returning: str | None = None) -> set | None:
    """Insert the rows whose key is new, leave the others alone. With `returning`, the set of that column of
    the rows inserted (not those that were there)."""
    if not rows:
        return set() if returning else None
    if _is_postgresql(session):
        result = await _upsert_postgresql(session, table, rows, key, None, returning)
        return set(result.scalars()) if returning else None
    stmt, _ = _insert(session, table)
    stmt = stmt.on_conflict_do_nothing(index_elements=[key])
    if returning:
        stmt = stmt.returning(table.c[returning])
    inserted: set = set()
    for start in range(0, len(rows), CHUNK):
        result = await session.execute(stmt, rows[start : start + CHUNK])
        if returning:
            inserted.update(result.scalars())
    return inserted if returning else None
