"""Why a message was held back or did not go out, as a stable message key with parameters.

The delivery log and the message keep the English text (`reason`, `detail`) for API clients that do not translate and
the key with its parameters (`reason_key`/`reason_params`, `detail_key`/`detail_params`) for the console, which writes
them from its zh-CN and en message tables (`msg.<key>` in the gateway's console/static/i18n.js). A provider's own
error text has no key: it is shown as the provider wrote it. Rows written before keys existed have none either.

A Reason is a str (its English text), so every place that compares or stores the text keeps working.
"""

from __future__ import annotations

from typing import Any

# key -> English template. A key is part of the API: change its text, never its meaning.
ENGLISH: dict[str, str] = {
    "delivery.contact_erased": "contact erased",
    "delivery.waiting_for_contact": "waiting for contact details",
    "delivery.unknown_contact": "unknown contact",
    "delivery.no_address": "no address for channel {channel}",
    "delivery.no_marketing_consent": "no marketing consent",
    "delivery.opted_out": "opted out of {category}",
    "delivery.not_subscribed": "not subscribed to {category}",
    "delivery.cap_per_day": "frequency cap: {sent} of {limit} per day already sent",
    "delivery.cap_per_week": "frequency cap: {sent} of {limit} per week already sent",
    "delivery.quiet_hours": "quiet hours",
    "delivery.render_failed": "render failed: {error}",
    "delivery.internal_error": "internal error: {error}",
    "delivery.retry": "retry {attempt}/{max_attempts}: {error}",
    "delivery.receipt_failed": "provider receipt: {detail}",
}

MAX_TEXT = 500  # the reason column's size


class Reason(str):
    """The English text (cut to MAX_TEXT), with `.key` and `.params`."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, **params: Any) -> Reason:
        if key not in ENGLISH:  # a key the console has no table entry for would show only the English text
            raise ValueError(f"unknown reason key {key!r}")
        text = super().__new__(cls, ENGLISH[key].format(**params)[:MAX_TEXT])
        text.key, text.params = key, params
        return text


def columns(text: str | None, prefix: str = "reason") -> dict[str, Any]:
    """The key and parameters columns of a text: {reason_key, reason_params} (or detail_...); both None for a plain
    text (a provider's own error) or none."""
    if isinstance(text, Reason):
        return {f"{prefix}_key": text.key, f"{prefix}_params": text.params}
    return {f"{prefix}_key": None, f"{prefix}_params": None}


ERASED = Reason("delivery.contact_erased")
WAITING_FOR_CONTACT = Reason("delivery.waiting_for_contact")
