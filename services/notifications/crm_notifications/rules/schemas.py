from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crm_common.inputs import Input


class Condition(Input):
    field: str = Field(min_length=1, max_length=100)
    op: str
    value: Any = None


class RuleIn(Input):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_.-]+$")
    event_type: str = Field(min_length=1, max_length=100)
    conditions: list[Condition] = Field(default_factory=list, max_length=20)
    template_key: str = Field(min_length=1, max_length=100)
    audience: str
    channel: str
    category: str
    urgency: str = "normal"
    digest_window_s: int | None = Field(default=None, ge=1, le=7 * 86400)
    digest_key: str | None = Field(default=None, max_length=100)
    enabled: bool = True


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    event_type: str
    conditions: list[dict[str, Any]]
    template_key: str
    audience: str
    channel: str
    category: str
    urgency: str
    digest_window_s: int | None
    digest_key: str | None
    enabled: bool
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
