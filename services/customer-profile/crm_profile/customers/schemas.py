from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{5,31}$")
    email: EmailStr | None = None


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    customer_type: Literal["enterprise", "individual"] = "enterprise"
    industry: str | None = Field(default=None, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    contact: ContactIn | None = None


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str | None
    phone: str | None
    email: str | None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    customer_type: str
    industry: str | None
    region: str | None
    status: str
    created_at: dt.datetime
    version: int
    contacts: list[ContactOut]
