"""Request and response bodies of the setup resources: teams (with their business calendar), agents, routing rules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from crm_common.events.bounds import NonNegativeInt32
from crm_common.inputs import Input
from crm_complaints.complaints.priority import CATEGORIES
from crm_complaints.complaints.sla import minute_of_day


class TeamIn(Input):
    name: str | None = None
    calendar: dict = Field(default_factory=dict)
    strategy: Literal["least_load", "round_robin"] = "least_load"
    team_lead: str | None = None
    manager: str | None = None


class TeamOut(BaseModel):
    id: str
    name: str
    calendar: dict
    strategy: str
    team_lead: str | None
    manager: str | None


class ShiftIn(Input):
    weekday: int = Field(ge=0, le=6)
    start: str = Field(pattern=r"^\d{2}:\d{2}$")
    end: str = Field(pattern=r"^\d{2}:\d{2}$")

    @field_validator("start", "end")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        minute_of_day(value)  # the calendar's HH:MM rule: "12:75" is a 422 naming it
        return value


Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=20)]


class AgentIn(Input):
    team_id: str
    name: str | None = None
    role: Literal["agent", "team_lead", "supervisor", "manager"] = "agent"
    active: bool = True
    shifts: list[ShiftIn] = Field(default_factory=list)
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None  # most open complaints at once; none = no limit
    skills: list[str] = Field(default_factory=list, max_length=len(CATEGORIES))  # complaint categories
    languages: list[Language] = Field(default_factory=list, max_length=20)  # e.g. zh-CN, en

    @field_validator("skills")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in CATEGORIES]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a complaint category (one of {', '.join(CATEGORIES)})")
        return list(dict.fromkeys(value))


class ShiftOut(BaseModel):
    weekday: int
    start: str
    end: str


class AgentOut(BaseModel):
    id: str
    name: str | None
    team_id: str
    role: str
    active: bool
    open_complaints: int
    shifts: list[ShiftOut]
    capacity: int | None
    skills: list[str]
    languages: list[str]


class RuleIn(Input):
    team: str
    name: str | None = Field(default=None, max_length=100)
    category: str | None = None
    region: str | None = None
    service_type: str | None = None
    position: NonNegativeInt32 | None = None


class RuleOut(BaseModel):
    team: str
    name: str | None
    category: str | None
    region: str | None
    service_type: str | None
    position: int


class HolidaysOut(BaseModel):
    region: str
    year: int
    holidays: list[str]
    workdays: list[str]
    source: str
