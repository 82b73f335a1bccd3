"""Bodies of the public survey resource (the page behind the link in the resolution message)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from crm_common.inputs import Input


class PublicSurveyIn(Input):
    token: str = Field(min_length=1, max_length=200)
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)


class SurveyPageOut(BaseModel):
    complaint_number: str
    language: str
    outcome: str | None
    resolved_at: dt.datetime | None
    answered: bool


class SurveyAnsweredOut(BaseModel):
    complaint_number: str
    score: int
    answered_at: dt.datetime
