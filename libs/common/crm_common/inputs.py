"""The base of every HTTP request body: unknown fields are refused, and so is text no database can store.

A JSON string may carry NUL ("\\u0000", which PostgreSQL text refuses) or a lone surrogate ("\\ud800", which
UTF-8 cannot encode); either would fail only at the INSERT, as a 500. Checking every field (nested lists,
objects and their keys included, so free-form values such as a rule condition's are covered too) answers
422 naming the field instead, on every database alike.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from crm_common.events.bounds import storable_text


def check_storable(value: Any) -> None:
    """Raise the storable_text error for the first unstorable string anywhere in value."""
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key)
            check_storable(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_storable(item)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # after each field's own validation: a nested Input is then a model instance, checked by its own fields,
    # so an error names the innermost field
    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        check_storable(value)
        return value
