"""Signed webhooks to customer systems.

Signature: hex HMAC-SHA256 with the shared secret over the bytes `f"{timestamp}.".encode() + body`,
sent as `X-CRM-Signature: v1=<hex>` with `X-CRM-Timestamp: <unix seconds>`. Receivers verify with
`verify_signature` (constant-time comparison, timestamp window against replay). See docs/notifications.md.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from crm_notifications.channels.base import ChannelError, ChannelResult, OutgoingMessage

TIMESTAMP_HEADER = "X-CRM-Timestamp"
SIGNATURE_HEADER = "X-CRM-Signature"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify_signature(secret: str, body: bytes, timestamp_header: str, signature_header: str, *,
                     now: float | None = None, tolerance_s: int = DEFAULT_TOLERANCE_S) -> bool:
    """True only if the signature matches and the timestamp is within `tolerance_s` of now."""
    try:
        timestamp = int(timestamp_header)
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in (signature_header or "").split(","))


class WebhookChannel:
    name = "webhook"

    def __init__(self, secret: str, *, timeout_s: float = 10.0, clock=time.time):
        self.secret = secret
        self.timeout_s = timeout_s
        self.clock = clock

    def request(self, message: OutgoingMessage) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(
            {
                "id": message.message_id,
                "customer_id": message.customer_id,
                "category": message.category,
                "language": message.language,
                "subject": message.subject,
                "text": message.body,
                "data": message.metadata.get("data", {}),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            "Idempotency-Key": message.message_id,
        }
        return body, headers

    async def send(self, message: OutgoingMessage) -> ChannelResult:
        body, headers = self.request(message)
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(message.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelError(f"webhook unreachable: {type(exc).__name__}: {exc}", transient=True) from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise ChannelError(f"webhook returned {response.status_code}", transient=True)
        if response.status_code >= 400:
            raise ChannelError(f"webhook refused ({response.status_code})", transient=False)
        return ChannelResult("delivered")
