"""SMS and push through an HTTP provider: POST {base}/v1/messages with an idempotency key.

Contract (what our fake provider in the tests implements, and what an adapter for a real
provider must map to): 2xx with {"id": ..., "status": "sent"|"delivered"}; 5xx, 429 or no
connection = try later; other 4xx = permanent failure.
"""

from __future__ import annotations

import httpx

from crm_notifications.channels.base import ChannelError, ChannelResult, OutgoingMessage


class HttpProviderChannel:
    def __init__(
        self, name: str, base_url: str, *, token: str | None = None, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None
    ):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._client = client

    def client(self) -> httpx.AsyncClient:
        """One pooled client per channel: building a client (TLS context) per message costs more than the send."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, limits=httpx.Limits(max_connections=32, max_keepalive_connections=16))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def send(self, message: OutgoingMessage) -> ChannelResult:
        headers = {"Idempotency-Key": message.message_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = {
            "channel": self.name,
            "to": message.address,
            "title": message.subject,
            "text": message.body,
            "language": message.language,
            "reference": message.message_id,
        }
        try:
            response = await self.client().post(f"{self.base_url}/v1/messages", json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise ChannelError(f"{self.name} provider unreachable: {type(exc).__name__}: {exc}", transient=True) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ChannelError(f"{self.name} provider returned {response.status_code}", transient=True)
        if response.status_code >= 400:
            raise ChannelError(f"{self.name} provider refused the message ({response.status_code}): {response.text[:300]}", transient=False)
        try:
            data = response.json()
        except ValueError:
            data = {}
        status = "delivered" if data.get("status") == "delivered" else "sent"
        return ChannelResult(status, provider_id=str(data.get("id")) if data.get("id") is not None else None)
