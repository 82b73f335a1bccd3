"""The bounds every event schema (and every API that takes the same kind of value) shares.

One definition per kind of value, so the gateway, which refuses a bad event at the edge, and the consumers,
which validate what they read from Kafka, apply the same contract (docs/events.md, "Bounds"):

* dates (and months, YYYY-MM): a plausible window, from EARLIEST to a horizon ahead of today: FACT_HORIZON for what happened or is
  planned (orders, shipments, payments, first orders, `occurred_at`), CONTRACT_HORIZON for contract dates,
  because contracts are signed for several years;
* date-times need an offset: a time without one is refused, never read in a guessed zone;
* money: a finite Decimal, 0 to MAX_MONEY, kept with exactly two decimal places (sub-cent digits rounded);
* currencies: the configured list (`CRM_CURRENCIES`, default ["CNY"]);
* whole numbers an API stores or looks up (ids, counts, positions): 0 to MAX_INT32, what an SQL INTEGER holds;
* identifiers: no control characters; free text: no NUL; neither a lone surrogate; URLs: http(s) only.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

EARLIEST = dt.date(2000, 1, 1)
FACT_HORIZON = dt.timedelta(days=366)
CONTRACT_HORIZON = dt.timedelta(days=366 * 10)

MAX_MONEY = Decimal("999999999.99")
MONEY_PLACES = 2
MAX_DELAY_MINUTES = 366 * 24 * 60  # a year late is the most a delay report can say
MAX_DAYS_OVERDUE = 10_000  # longer than the date window: an invoice due on EARLIEST is not that late yet
MAX_ATTEMPTS = 1_000
MAX_QUANTITY = 1_000_000_000  # units (pieces, pallets, cartons) of one order: far above any real order
# an SQL INTEGER (PostgreSQL int4): a larger id, count or position fails only at the query (asyncpg), as a 5xx
MAX_INT32 = 2**31 - 1

_CONTROL = r"\x00-\x1f\x7f-\x9f"
NO_CONTROL_PATTERN = rf"^[^{_CONTROL}]*$"
_CONTROL_RE = re.compile(f"[{_CONTROL}]")


class ContractSettings(BaseSettings):
    """What the installation accepts, shared by every process (env prefix CRM_)."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    currencies: list[str] = Field(default_factory=lambda: ["CNY"], min_length=1)


@functools.lru_cache(maxsize=1)
def contract_settings() -> ContractSettings:
    return ContractSettings()


def accepted_currencies() -> tuple[str, ...]:
    return tuple(c.upper() for c in contract_settings().currencies)


def _latest(horizon: dt.timedelta) -> dt.date:
    return dt.datetime.now(dt.UTC).date() + horizon


def _check_day(day: dt.date, horizon: dt.timedelta, what: str) -> None:
    latest = _latest(horizon)
    if not EARLIEST <= day <= latest:
        raise PydanticCustomError(
            "date_out_of_window",
            "{what} must be between {earliest} and {latest} (today + {days} days)",
            {"what": what, "earliest": EARLIEST.isoformat(), "latest": latest.isoformat(), "days": horizon.days},
        )


def _fact_date(value: dt.date) -> dt.date:
    _check_day(value, FACT_HORIZON, "a date")
    return value


def _contract_date(value: dt.date) -> dt.date:
    _check_day(value, CONTRACT_HORIZON, "a contract date")
    return value


def _fact_month(value: str) -> str:
    year, month = int(value[:4]), int(value[5:])
    latest = _latest(FACT_HORIZON)
    if not (EARLIEST.year, EARLIEST.month) <= (year, month) <= (latest.year, latest.month):
        raise PydanticCustomError(
            "month_out_of_window",
            "a month must be between {earliest} and {latest} (the month of today + {days} days)",
            {"earliest": EARLIEST.strftime("%Y-%m"), "latest": latest.strftime("%Y-%m"), "days": FACT_HORIZON.days},
        )
    return value


def _fact_datetime(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "timezone_required", "a date-time needs an offset (Z or +08:00): a time without one is refused, not guessed"
        )
    _check_day(value.astimezone(dt.UTC).date(), FACT_HORIZON, "a date-time")
    return value


def _money(value: Decimal) -> Decimal:
    """Kept with exactly MONEY_PLACES places; sub-cent digits (computed shares, float exports) round half-even."""
    cents = value.quantize(Decimal(1).scaleb(-MONEY_PLACES), rounding=ROUND_HALF_EVEN)
    if abs(cents) > MAX_MONEY:
        raise PydanticCustomError("money_out_of_range", "an amount must be at most {max} in absolute value", {"max": str(MAX_MONEY)})
    return cents


def _currency(value: str) -> str:
    code = value.upper()
    accepted = accepted_currencies()
    if code not in accepted:
        raise PydanticCustomError(
            "currency_not_accepted",
            "currency {code} is not accepted here; accepted: {accepted}",
            {"code": code, "accepted": ", ".join(accepted)},
        )
    return code


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or _CONTROL_RE.search(value):
        raise PydanticCustomError("url_scheme", "a URL must be http:// or https:// with a host")
    return _no_lone_surrogate(value)


_WINDOW = f"between {EARLIEST.isoformat()} and today + {{days}} days"

FactDate = Annotated[
    dt.date,
    AfterValidator(_fact_date),
    Field(
        description=f"Date, {_WINDOW.format(days=FACT_HORIZON.days)}.",
        json_schema_extra={"x-earliest": EARLIEST.isoformat(), "x-latest-days-ahead": FACT_HORIZON.days},
    ),
]
ContractDate = Annotated[
    dt.date,
    AfterValidator(_contract_date),
    Field(
        description=f"Contract date, {_WINDOW.format(days=CONTRACT_HORIZON.days)}.",
        json_schema_extra={"x-earliest": EARLIEST.isoformat(), "x-latest-days-ahead": CONTRACT_HORIZON.days},
    ),
]
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
FactMonth = Annotated[
    str,
    StringConstraints(pattern=MONTH_PATTERN),
    AfterValidator(_fact_month),
    Field(
        description=f"Month YYYY-MM, between {EARLIEST.strftime('%Y-%m')} and the month of today + {FACT_HORIZON.days} days.",
        json_schema_extra={"x-earliest": EARLIEST.strftime("%Y-%m"), "x-latest-days-ahead": FACT_HORIZON.days},
    ),
]
FactDateTime = Annotated[
    dt.datetime,
    AfterValidator(_fact_datetime),
    Field(
        description="ISO 8601 date-time with an offset (Z or +08:00; without one it is refused), "
        f"{_WINDOW.format(days=FACT_HORIZON.days)}.",
        json_schema_extra={"x-earliest": EARLIEST.isoformat(), "x-latest-days-ahead": FACT_HORIZON.days},
    ),
]
_CENTS = f"kept with {MONEY_PLACES} decimal places (more are rounded half-to-even)"
_MONEY_SCHEMA = {"x-decimal-places": MONEY_PLACES}
Money = Annotated[
    Decimal,
    Field(
        ge=0,
        le=MAX_MONEY,
        allow_inf_nan=False,
        json_schema_extra=_MONEY_SCHEMA,
        description=f"Decimal (a JSON string or number), 0 to {MAX_MONEY}, {_CENTS}.",
    ),
    AfterValidator(_money),
]
SignedMoney = Annotated[
    Decimal,
    Field(
        ge=-MAX_MONEY,
        le=MAX_MONEY,
        allow_inf_nan=False,
        json_schema_extra=_MONEY_SCHEMA,
        description=f"Decimal, -{MAX_MONEY} to {MAX_MONEY} (a loss is negative), {_CENTS}.",
    ),
    AfterValidator(_money),
]
Currency = Annotated[
    str,
    AfterValidator(_currency),
    Field(min_length=3, max_length=3, description="ISO 4217 code from the configured list (CRM_CURRENCIES, default CNY)."),
]


def _no_control(value: str) -> str:
    if _CONTROL_RE.search(value):
        raise PydanticCustomError("control_character", "must not contain control characters (U+0000-U+001F, U+007F-U+009F)")
    return _no_lone_surrogate(value)


_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")  # a valid pair is one code point in a str: whatever is left is lone


def _no_lone_surrogate(value: str) -> str:
    if _LONE_SURROGATE_RE.search(value):
        raise PydanticCustomError(
            "lone_surrogate",
            'must not contain a lone surrogate (U+D800-U+DFFF, e.g. a JSON "\\ud800" without its pair): it is no character and cannot be '
            "stored as UTF-8",
        )
    return value


def storable_text(value: str) -> str:
    """Text a database can hold: no NUL (PostgreSQL refuses it) and no lone surrogate (UTF-8 cannot encode it)."""
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL (U+0000)")
    return _no_lone_surrogate(value)


NoControl = Annotated[str, AfterValidator(_no_control), Field(json_schema_extra={"pattern": NO_CONTROL_PATTERN})]


def identifier(max_length: int = 100) -> Any:
    """A business id (order, invoice, customer...): 1 to max_length characters, no control characters.
    For a pydantic field or TypeAdapter; a type checker reads an annotation, so use a named alias there (Identifier)."""
    return Annotated[NoControl, StringConstraints(min_length=1, max_length=max_length)]


_NO_NUL_SCHEMA = Field(json_schema_extra={"pattern": r"^[^\x00]*$"})


def free_text(max_length: int) -> Any:
    """Text a person wrote (a reason, a description): anything a database can store (storable_text).
    For a pydantic field or TypeAdapter; a type checker reads an annotation, so use a named alias there (ShortText...)."""
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(storable_text), _NO_NUL_SCHEMA]


# The same as identifier() and free_text(n), written out so that mypy reads them as types.
Identifier = Annotated[NoControl, StringConstraints(min_length=1, max_length=100)]
ShortText = Annotated[str, StringConstraints(max_length=200), AfterValidator(storable_text), _NO_NUL_SCHEMA]
MediumText = Annotated[str, StringConstraints(max_length=1000), AfterValidator(storable_text), _NO_NUL_SCHEMA]
LongText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(storable_text), _NO_NUL_SCHEMA]
HttpUrl = Annotated[str, AfterValidator(_http_url), Field(max_length=2000, description="An http:// or https:// URL.")]
Quantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY, description=f"Whole units (pieces, cartons, pallets), 0 to {MAX_QUANTITY}.")]
# as a query parameter: `Annotated[NonNegativeInt32, Query(...)] = default` (a `= Query(...)` default drops these bounds)
NonNegativeInt32 = Annotated[int, Field(ge=0, le=MAX_INT32, description=f"Whole number, 0 to {MAX_INT32} (what an SQL INTEGER holds).")]
