from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crm_common.inputs import Input

Language = Literal["zh-CN", "en"]


class TemplateIn(Input):
    subject: str = Field(min_length=1, max_length=1000)
    body: str = Field(min_length=1, max_length=50_000)
    variables: list[str] = Field(default_factory=list, max_length=100)
    description: str | None = Field(default=None, max_length=500)


class TemplateCreate(TemplateIn):
    key: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_.-]+$")
    language: Language


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    language: str
    version: int
    subject: str
    body: str
    variables: list[str]
    description: str | None
    created_at: dt.datetime


class PreviewIn(Input):
    language: Language | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    template: TemplateIn | None = Field(default=None, description="Preview an unsaved draft instead of the stored version.")


class PreviewOut(BaseModel):
    key: str
    language: str
    version: int | None
    subject: str
    body: str
