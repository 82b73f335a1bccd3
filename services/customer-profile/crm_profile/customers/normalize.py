"""Normal forms used for storage, duplicate detection and search (phones and emails: crm_common.contacts)."""

from __future__ import annotations

import re

_TAX_ID_STRIP = re.compile(r"[\s\-./]")
_TAX_ID_FORM = re.compile(r"^[0-9A-Z]{6,30}$")


def normalize_tax_id(raw: str) -> str:
    """Unified social credit code / VAT number: spaces and separators dropped, upper-case."""
    value = _TAX_ID_STRIP.sub("", raw).upper()
    if not _TAX_ID_FORM.match(value):
        raise ValueError("tax id must be 6-30 letters or digits")
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ID = re.compile(r"^[0-9a-fA-F-]{36}$")


def has_control_characters(value: str) -> bool:
    """C0 controls other than tab and newlines, and DEL (PostgreSQL cannot even store NUL)."""
    return bool(_CONTROL.search(value))


def is_id(value: str) -> bool:
    """Ids are UUIDs made here; anything else cannot name a row (and never reaches the database)."""
    return bool(_ID.match(value))


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
