"""The answer to an ingested batch: one result per event."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Status = Literal["accepted", "duplicate", "rejected"]


class ItemResult(BaseModel):
    index: int
    event_id: str | None
    type: str | None = None
    status: Status
    topic: str | None = None
    reason: str | None = None


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[ItemResult]
