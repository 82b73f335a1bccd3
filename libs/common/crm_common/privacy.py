"""Forgetting a person: find and scrub their name, phone and email in free text, JSON, outbox bodies and the
answers kept for Idempotency-Key retries.

Used by the services that handle CustomerErased. A `Person` is built from what a service knew about the
contact before erasure; `Person.scrub` replaces every occurrence with `TOMBSTONE`:

- names case-insensitively, any run of whitespace between the words;
- emails case-insensitively;
- phones however they are written: E.164 (`+8613987654321`), with or without the country code
  (`+86`, `0086`, `86`), with or without a trunk `0`, with spaces, dashes, dots or brackets between the
  digits (`139 8765 4321`, `139-8765-4321`), but never inside a longer run of digits (a tracking number
  is not scrubbed because it happens to contain the number).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson
import phonenumbers
from sqlalchemy import ColumnElement, Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.idempotency import idempotency_table
from crm_common.outbox import outbox_table

# Rewrites a stored JSON body (an envelope, an answer) before the text scrub, e.g. to clear known fields.
Rewrite = Callable[[Any], Any]

TOMBSTONE = "[erased]"
MIN_NAME_LENGTH = 2  # a one-letter "name" would scrub half of every text
MIN_PHONE_DIGITS = 5
_SEP = r"[\s\-.()/]{0,3}"


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _spaced(digits: str) -> str:
    return _SEP.join(re.escape(d) for d in digits)


def phone_regex(phone: str, default_region: str = "CN") -> str | None:
    """A regular expression for the ways `phone` (preferably E.164; a national number is read in
    `default_region`) may be written in free text."""
    digits = _digits(phone)
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    country, national = "", digits
    try:
        number = phonenumbers.parse(phone, None if phone.strip().startswith("+") else default_region)
        if phonenumbers.is_possible_number(number):
            country, national = str(number.country_code), str(number.national_number)
    except phonenumbers.NumberParseException:  # not parseable: match the digits as written
        pass
    if not country:
        return rf"(?<!\d){_spaced(digits)}(?!\d)"
    prefix = rf"(?:(?:(?:\+|00){_SEP})?{_spaced(country)}{_SEP})?(?:0{_SEP})?"
    return rf"(?<!\d){prefix}{_spaced(national)}(?!\d)"


def _name_regex(name: str) -> str | None:
    words = name.split()
    if not words or len(name.strip()) < MIN_NAME_LENGTH or name.strip() == TOMBSTONE:
        return None
    return r"\s+".join(re.escape(w) for w in words)


@dataclass(frozen=True)
class Person:
    names: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()

    @classmethod
    def of(cls, names: Iterable[str | None] = (), phones: Iterable[str | None] = (), emails: Iterable[str | None] = ()) -> Person:
        def clean(values: Iterable[str | None], ok: Callable[[str], bool]) -> tuple[str, ...]:
            return tuple(sorted({v.strip() for v in values if v and v.strip() and ok(v.strip())}, key=lambda v: (-len(v), v)))

        return cls(
            names=clean(names, lambda v: _name_regex(v) is not None),
            phones=clean(phones, lambda v: phone_regex(v) is not None),
            emails=clean(emails, lambda v: "@" in v),
        )

    def __bool__(self) -> bool:
        return bool(self.names or self.phones or self.emails)

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        parts = [re.escape(e) for e in self.emails]  # emails first: a name may be part of the address
        parts += [p for p in (phone_regex(p) for p in self.phones) if p]
        parts += [n for n in (_name_regex(n) for n in self.names) if n]
        return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE) if parts else None

    def scrub(self, text: str | None) -> str | None:
        pattern = self.pattern
        if not text or pattern is None:
            return text
        return pattern.sub(TOMBSTONE, text)

    def scrub_json(self, value: Any) -> Any:
        """Every string in a JSON-like value (keys are left alone)."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub_json(v) for k, v in value.items()}
        return value

    def merged(self, other: Person) -> Person:
        return Person.of(self.names + other.names, self.phones + other.phones, self.emails + other.emails)


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def mentions(column: ColumnElement[str], needles: Iterable[str]) -> ColumnElement[bool]:
    """SQL: the column contains one of the strings (case-insensitive); a cheap pre-filter before `Person.scrub`."""
    return or_(*[column.ilike(f"%{escape_like(n)}%", escape="\\") for n in needles])


async def scrub_outbox(
    session: AsyncSession,
    person: Person,
    *,
    keys: Iterable[str] | None = None,
    rewrite: Rewrite | None = None,
    mentioning: Iterable[str] | None = None,
) -> int:
    """Rewrite the bodies of outbox rows (of the given message keys, or all) that mention the person.

    `rewrite(envelope: dict) -> dict`, when given, runs before the text scrub (e.g. to clear known fields).
    `mentioning` (strings) limits the rows read to those containing one of them (SQL pre-filter).
    Rows still pending leave scrubbed; published rows are only kept for the retention period, but they
    are scrubbed as well so that the database holds nothing on the person. Returns the rows changed.
    """
    return await _scrub_json_bodies(
        session, person, outbox_table, outbox_table.c.body, outbox_table.c.key, keys=keys, rewrite=rewrite, mentioning=mentioning
    )


async def scrub_idempotency_records(
    session: AsyncSession,
    person: Person,
    *,
    subjects: Iterable[str] | None = None,
    rewrite: Rewrite | None = None,
    mentioning: Iterable[str] | None = None,
) -> int:
    """The same for the answers kept for Idempotency-Key retries (crm_common.idempotency) about the given customers
    (`subjects`), or all: a retry after the erasure is answered without the person."""
    table = idempotency_table
    return await _scrub_json_bodies(
        session, person, table, table.c.response_body, table.c.subject, keys=subjects, rewrite=rewrite, mentioning=mentioning
    )


async def _scrub_json_bodies(
    session: AsyncSession,
    person: Person,
    table: Table,
    body_column: ColumnElement[str],
    key_column: ColumnElement[str],
    *,
    keys: Iterable[str] | None,
    rewrite: Rewrite | None,
    mentioning: Iterable[str] | None,
) -> int:
    if not person and rewrite is None:
        return 0
    row_key = list(table.primary_key.columns)
    query = select(*row_key, body_column.label("body")).where(body_column.is_not(None))
    if keys is not None:
        query = query.where(key_column.in_(list(set(keys))))
    if mentioning is not None:
        needles = [n for n in mentioning if n]
        if not needles:
            return 0
        query = query.where(mentions(body_column, needles))
    changed = 0
    for row in (await session.execute(query.order_by(*row_key))).all():
        original = orjson.loads(row.body)
        cleaned = person.scrub_json(rewrite(original) if rewrite is not None else original)
        body = orjson.dumps(cleaned).decode()
        if body != row.body and cleaned != orjson.loads(row.body):
            match = [column == row._mapping[column.name] for column in row_key]
            await session.execute(update(table).where(*match).values({body_column.name: body}))
            changed += 1
    return changed
