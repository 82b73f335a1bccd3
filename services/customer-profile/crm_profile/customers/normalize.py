"""Normal forms used for storage, duplicate detection and search."""
from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_REGION = "CN"
_TAX_ID_STRIP = re.compile(r"[\s\-./]")
_TAX_ID_FORM = re.compile(r"^[0-9A-Z]{6,30}$")


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 (`+8613800138000`); national numbers are read as Chinese. ValueError if not a real number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_normalize_phone(raw: str) -> str | None:
    try:
        return normalize_phone(raw)
    except ValueError:
        return None


def phone_variants(e164: str) -> list[str]:
    """Ways a stored number may be written in free text (used when scrubbing an erased person)."""
    variants = {e164}
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return [e164]
    national = str(number.national_number)
    variants.add(national)
    variants.add(e164.lstrip("+"))
    for fmt in (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
        formatted = phonenumbers.format_number(number, fmt)
        variants.add(formatted)
        variants.add(formatted.replace(" ", ""))
        variants.add(formatted.replace(" ", "-"))
    if number.country_code == 86 and len(national) == 11:  # 138-0013-8000, 138 0013 8000
        variants.add(f"{national[:3]}-{national[3:7]}-{national[7:]}")
        variants.add(f"{national[:3]} {national[3:7]} {national[7:]}")
    return sorted((v for v in variants if len(v) >= 5), key=len, reverse=True)


def normalize_email(raw: str) -> str:
    """Syntax-checked and lower-cased as a whole (`Li.Wei@Example.COM` -> `li.wei@example.com`)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return result.normalized.lower()


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
