"""The envelope every event travels in, and the registry of versioned payload models.

Changing an event means adding a payload class with a higher `event_version`;
readers keep their old versions registered, so nothing breaks.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from crm_common.events.bounds import FactDateTime, NoControl

_REGISTRY: dict[tuple[str, int], type[EventPayload]] = {}


class InvalidEvent(ValueError):
    """A message that is not a valid envelope or whose payload fails its schema."""


class UnknownEventType(InvalidEvent):
    """A (type, version) that this build does not know."""


class EventPayload(BaseModel):
    """Base of every payload model. Subclasses set `event_type` and `event_version`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str] = ""
    event_version: ClassVar[int] = 1

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        declares = "event_type" in cls.__dict__ or "event_version" in cls.__dict__
        if declares and cls.event_type:
            key = (cls.event_type, cls.event_version)
            if key in _REGISTRY and _REGISTRY[key] is not cls:
                raise RuntimeError(f"event {key} registered twice")
            _REGISTRY[key] = cls


def payload_model(event_type: str, version: int) -> type[EventPayload]:
    try:
        return _REGISTRY[(event_type, version)]
    except KeyError:
        raise UnknownEventType(f"unknown event {event_type} v{version}") from None


def registered_events() -> dict[tuple[str, int], type[EventPayload]]:
    return dict(_REGISTRY)


_PARSED = "_parsed_payload"  # EventEnvelope.__dict__ key of the validated payload


class EventEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: uuid.UUID
    type: NoControl = Field(min_length=1, max_length=100)
    version: StrictInt = Field(ge=1, description="The payload schema's version: an integer this build knows for `type`.")
    occurred_at: FactDateTime
    producer: NoControl = Field(min_length=1, max_length=100)
    key: NoControl = Field(min_length=1, max_length=200, description="The customer id; the Kafka message key.")
    correlation_id: NoControl | None = Field(default=None, max_length=200)
    traceparent: NoControl | None = Field(
        default=None, max_length=200, description="W3C trace context of the request that staged the event (tracing on)."
    )
    payload: dict[str, Any]

    def parsed(self) -> EventPayload:
        """The payload as its registered model; raises InvalidEvent when it fails the schema.

        Validated once per envelope: the result is kept beside the fields (not a field: equality, dumps and
        the schema ignore it) together with what it was validated from, so a copy with another payload, type
        or version is validated again."""
        cached = self.__dict__.get(_PARSED)
        if cached is not None and cached[0] is self.payload and cached[1] == self.type and cached[2] == self.version:
            parsed: EventPayload = cached[3]
            return parsed
        model = payload_model(self.type, self.version)
        try:
            payload = model.model_validate(self.payload)
        except ValidationError as exc:
            raise InvalidEvent(f"{self.type} v{self.version} payload invalid: {exc.errors(include_url=False)}") from exc
        self.__dict__[_PARSED] = (self.payload, self.type, self.version, payload)
        return payload


def make_event(
    payload: EventPayload,
    *,
    key: str,
    producer: str,
    correlation_id: str | None = None,
    event_id: uuid.UUID | None = None,
    occurred_at: dt.datetime | None = None,
) -> EventEnvelope:
    return EventEnvelope(
        event_id=event_id or uuid.uuid4(),
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=occurred_at or dt.datetime.now(dt.UTC),
        producer=producer,
        key=str(key),
        correlation_id=correlation_id,
        payload=payload.model_dump(mode="json"),
    )


_NO_TRACE = {"traceparent"}


def encode_envelope(envelope: EventEnvelope) -> bytes:
    """The envelope as compact JSON (UTF-8), serialised by pydantic-core in one step."""
    # without a trace the bytes stay what they were before the field existed
    return envelope.model_dump_json(exclude=None if envelope.traceparent else _NO_TRACE).encode()


def decode_envelope(raw: bytes | str) -> EventEnvelope:
    """Parse the envelope and validate its payload against the registered schema.

    One pass from the bytes (pydantic's own JSON parser, no intermediate Python objects for the envelope
    fields); the validated payload stays with the envelope, so `parsed()` afterwards costs nothing."""
    try:
        envelope = EventEnvelope.model_validate_json(raw)
    except (ValidationError, TypeError) as exc:
        raise InvalidEvent(f"not a valid event envelope: {exc}") from exc
    envelope.parsed()
    return envelope
