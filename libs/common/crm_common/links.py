"""Signed, expiring links a person opens without signing in (the complaint survey, the satisfaction survey campaigns).

A link's token is `<expiry, unix seconds>.<HMAC-SHA256 of the link's parts and the expiry>` keyed with the service's
secret. Nobody can forge one or move its expiry. The parts name what the link opens and carry a nonce the service
stores with it: a new nonce voids the old links, and the service marks the thing answered, so a link is used once
(the single use is the service's rule: this module only signs and checks).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac


class InvalidLink(Exception):
    """The token is not one this secret signed for these parts."""


class LinkExpired(Exception):
    """The token was signed for these parts but its validity ended."""


def _signature(secret: str, parts: tuple[str, ...], expires: int) -> str:
    message = ":".join((*parts, str(expires))).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, *parts: str, expires_at: dt.datetime) -> str:
    expires = int(expires_at.timestamp())
    return f"{expires}.{_signature(secret, parts, expires)}"


def check(secret: str, token: str | None, *parts: str, now: dt.datetime) -> None:
    """InvalidLink for a token not signed for `parts` (or a part that is empty: no nonce, no link), LinkExpired after
    its expiry."""
    expires_text, _, signature = (token or "").partition(".")
    if not all(parts) or not expires_text.isdigit() or not signature:
        raise InvalidLink()
    if not hmac.compare_digest(_signature(secret, parts, int(expires_text)), signature):
        raise InvalidLink()
    if now.timestamp() >= int(expires_text):
        raise LinkExpired()
