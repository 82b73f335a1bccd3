"""One normal form for a contact's phone number and email address, for every service.

A phone number is parsed with `phonenumbers` (national numbers read as Chinese unless a region is given) and kept
in E.164 (`+8613800138000`); an email address is syntax-checked with `email-validator` and lower-cased as a whole.

Two strengths of the same rule:
- `normalize_phone` / `normalize_email` refuse what is not a real number or address (ValueError): for data a
  person is entering now, who can be told to correct it (a customer's contacts, a notification address).
- `phone_key` / `email_key` never refuse: for values that must be stored or compared as they come (a reporter
  named on a complaint, a contact in an event, a search term). A number that is possible by its length gets its
  E.164 form (validity would depend on the numbering plan of the installed library's metadata, and a key must not
  change when the library is updated); anything else keeps its digits. Whatever passes the strict check has the
  same key as its normal form, so keys match the normal forms other services store.
"""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_REGION = "CN"


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 of a valid number; ValueError otherwise."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str | None:
    try:
        return normalize_phone(raw, region)
    except ValueError:
        return None


def phone_key(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """E.164 of a possible number, else the digits (and a `+`) as written; None when there are none."""
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, region)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return "".join(ch for ch in raw if ch.isdigit() or ch == "+") or None


def phone_variants(e164: str) -> list[str]:
    """Ways a stored number may be written in free text, longest first (to find it when scrubbing an erased person)."""
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
    """Syntax-checked and lower-cased as a whole (`Li.Wei@Example.COM` -> `li.wei@example.com`); ValueError otherwise."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return result.normalized.lower()


def email_key(raw: str | None) -> str | None:
    """The normal form of a valid address, else the text stripped and lower-cased; None when empty."""
    if not raw or not raw.strip():
        return None
    try:
        return normalize_email(raw)
    except ValueError:
        return raw.strip().lower()
