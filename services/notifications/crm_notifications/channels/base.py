"""One interface for every channel. A channel either returns a result or raises ChannelError,
which says whether trying again later can help (provider down) or not (address refused)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str  # stable across retries: providers and receivers can deduplicate on it
    channel: str
    address: str
    subject: str
    body: str
    language: str
    customer_id: str
    category: str
    metadata: dict = field(default_factory=dict)
    contact_id: str | None = None


@dataclass(frozen=True)
class ChannelResult:
    status: str  # "sent" (accepted by the provider) or "delivered" (confirmed at the recipient)
    provider_id: str | None = None


class ChannelError(Exception):
    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


class Channel(Protocol):
    name: str

    async def send(self, message: OutgoingMessage) -> ChannelResult: ...
