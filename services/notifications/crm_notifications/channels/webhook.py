"""Signed webhooks to customer systems, per the Standard Webhooks specification (standardwebhooks.com).

Each delivery carries `webhook-id` (the message id: the same on every retry), `webhook-timestamp` (unix seconds)
and `webhook-signature: v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, keyed with the endpoint's
signing secret `whsec_<base64 key>` (`standard_secret`): any Standard Webhooks library verifies it.

For one version the old signature goes along: `X-CRM-Signature: v1=<hex HMAC-SHA256 over "{timestamp}." + body>`
with `X-CRM-Timestamp`, keyed with the hex endpoint secret, checked by `verify_signature`; receivers move to the
standard headers before it is dropped. See docs/notifications.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx

from crm_notifications.channels.base import ChannelError, ChannelResult, OutgoingMessage

TIMESTAMP_HEADER = "X-CRM-Timestamp"  # legacy, kept for one version
SIGNATURE_HEADER = "X-CRM-Signature"  # legacy, kept for one version
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
STANDARD_SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300


def endpoint_secret(master_secret: str, contact_id: str) -> str:
    """Each endpoint gets its own secret, derived from the service's master secret, so one customer
    knowing its secret cannot forge deliveries to another customer's endpoint. Nothing to store:
    staff read it from GET /preferences/contacts/{contact_id} once a webhook address is set."""
    return hmac.new(master_secret.encode(), f"webhook:{contact_id}".encode(), hashlib.sha256).hexdigest()


def standard_secret(endpoint_secret_hex: str) -> str:
    """The same endpoint key in the Standard Webhooks form receivers' libraries take: `whsec_` + base64 of its bytes."""
    return STANDARD_SECRET_PREFIX + base64.b64encode(bytes.fromhex(endpoint_secret_hex)).decode()


def standard_signature(endpoint_secret_hex: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` over `{webhook-id}.{webhook-timestamp}.{body}` with the key's bytes."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(bytes.fromhex(endpoint_secret_hex), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The legacy `X-CRM-Signature` (kept for one version)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp_header: str,
    signature_header: str,
    *,
    now: float | None = None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
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
        secret = self.secret_for(message)
        headers = {
            "Content-Type": "application/json",
            WEBHOOK_ID_HEADER: message.message_id,
            WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
            WEBHOOK_SIGNATURE_HEADER: standard_signature(secret, message.message_id, timestamp, body),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
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
