"""Signed webhooks to customer systems.

Signature: hex HMAC-SHA256 with the endpoint's secret over the bytes `f"{timestamp}.".encode() + body`,
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


def endpoint_secret(master_secret: str, contact_id: str) -> str:
    """Each endpoint gets its own secret, derived from the service's master secret, so one customer
    knowing its secret cannot forge deliveries to another customer's endpoint. Nothing to store:
    staff read it from GET /preferences/contacts/{contact_id} once a webhook address is set."""
    return hmac.new(master_secret.encode(), f"webhook:{contact_id}".encode(), hashlib.sha256).hexdigest()


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

    def __init__(self, master_secret: str, *, timeout_s: float = 10.0, clock=time.time):
        self._client: httpx.AsyncClient | None = None
        self.master_secret = master_secret
        self.timeout_s = timeout_s
        self.clock = clock

    def secret_for(self, message: OutgoingMessage) -> str:
        return endpoint_secret(self.master_secret, message.contact_id or message.customer_id)

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
            SIGNATURE_HEADER: sign(self.secret_for(message), timestamp, body),
            "Idempotency-Key": message.message_id,
        }
        return body, headers

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def send(self, message: OutgoingMessage) -> ChannelResult:
        body, headers = self.request(message)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        try:
            response = await self._client.post(message.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelError(f"webhook unreachable: {type(exc).__name__}: {exc}", transient=True) from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise ChannelError(f"webhook returned {response.status_code}", transient=True)
        if response.status_code >= 400:
            raise ChannelError(f"webhook refused ({response.status_code})", transient=False)
        return ChannelResult("delivered")
