"""Rules CRUD with validation against the event registry, the catalog and the stored templates."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import utcnow
from crm_notifications import catalog, configuration
from crm_notifications.rules.conditions import OPS
from crm_notifications.rules.models import Rule
from crm_notifications.rules.schemas import RuleIn
from crm_notifications.templates import service as templates
from crm_notifications.templates.service import invalid


class RuleExists(ValueError):
    pass


class RuleVersionMismatch(ValueError):
    """The rule changed since the version the caller read (If-Match)."""


class RuleNotFound(LookupError):
    pass


async def validate(session: AsyncSession, data: RuleIn) -> None:
    errors: list[dict] = []

    def err(field: str, msg: str, type_: str) -> None:
        errors.append({"loc": ["body", field], "msg": msg, "type": type_})

    if not catalog.known_trigger(data.event_type):
        err("event_type", f"unknown event type {data.event_type!r}: not a registered event or internal trigger", "unknown_event")
    if data.audience not in catalog.AUDIENCES:
        err("audience", f"unknown audience {data.audience!r}; one of {sorted(catalog.AUDIENCES)}", "unknown_audience")
    if data.channel not in catalog.RULE_CHANNELS:
        err("channel", f"unknown channel {data.channel!r}; one of {list(catalog.RULE_CHANNELS)}", "unknown_channel")
    if data.category not in catalog.CATEGORIES:
        err("category", f"unknown category {data.category!r}; one of {sorted(catalog.CATEGORIES)}", "unknown_category")
    if data.urgency not in catalog.URGENCIES:
        err("urgency", f"urgency must be one of {list(catalog.URGENCIES)}", "unknown_urgency")
    internal_audience = data.audience in catalog.INTERNAL_AUDIENCES
    if internal_audience and data.channel != "inbox":
        err("channel", "internal audiences are reached through the in-app inbox", "channel_audience_mismatch")
    if data.channel == "inbox" and not internal_audience and data.audience in catalog.AUDIENCES:
        err("channel", "the in-app inbox is for our own staff, not for customer contacts", "channel_audience_mismatch")
    if data.digest_key is not None and data.digest_window_s is None:
        err("digest_key", "digest_key needs digest_window_s", "digest_incomplete")
    if data.urgency == "critical" and data.digest_window_s:
        err("digest_window_s", "critical messages bypass digests; remove the window", "critical_digest")
    if catalog.known_trigger(data.event_type):
        fields = catalog.condition_fields(data.event_type)
        for i, condition in enumerate(data.conditions):
            if condition.op not in OPS:
                errors.append(
                    {"loc": ["body", "conditions", str(i), "op"], "msg": f"unknown operator {condition.op!r}", "type": "unknown_operator"}
                )
            if condition.field not in fields:
                errors.append(
                    {
                        "loc": ["body", "conditions", str(i), "field"],
                        "msg": f"{data.event_type} has no field {condition.field!r}",
                        "type": "unknown_field",
                    }
                )
        if data.digest_key is not None and data.digest_key not in fields:
            err("digest_key", f"{data.event_type} has no field {data.digest_key!r}", "unknown_field")
        if await templates.exists(session, data.template_key):
            available = catalog.trigger_variables(data.event_type, digest=data.digest_window_s is not None)
            missing = sorted(await templates.declared_variables(session, data.template_key) - available)
            if missing:
                err(
                    "template_key",
                    f"template {data.template_key!r} needs {missing}, which {data.event_type} does not provide",
                    "template_variables",
                )
        else:
            err("template_key", f"no template {data.template_key!r}", "unknown_template")
    if errors:
        raise invalid(errors, "; ".join(e["msg"] for e in errors))


async def create(session: AsyncSession, data: RuleIn) -> Rule:
    await validate(session, data)
    if await session.scalar(select(Rule.id).where(Rule.name == data.name)):
        raise RuleExists(f"A rule named {data.name!r} already exists.")
    now = utcnow()
    rule = Rule(id=str(uuid.uuid4()), version=1, created_at=now, updated_at=now, **_fields(data))
    session.add(rule)
    await session.flush()
    await configuration.mark_changed(session)
    return rule


async def update(session: AsyncSession, rule_id: str, data: RuleIn, *, if_version: int | None = None) -> Rule:
    rule = await get(session, rule_id)
    if if_version is not None and rule.version != if_version:
        raise RuleVersionMismatch(f"Rule is at version {rule.version}, not {if_version}.")
    await validate(session, data)
    for name, value in _fields(data).items():
        setattr(rule, name, value)
    rule.version += 1
    rule.updated_at = utcnow()
    await session.flush()
    await configuration.mark_changed(session)
    return rule


async def delete(session: AsyncSession, rule_id: str) -> None:
    await session.delete(await get(session, rule_id))
    await configuration.mark_changed(session)


async def get(session: AsyncSession, rule_id: str) -> Rule:
    rule = await session.get(Rule, rule_id)
    if rule is None:
        rule = await session.scalar(select(Rule).where(Rule.name == rule_id))
    if rule is None:
        raise RuleNotFound(f"No rule {rule_id!r}.")
    return rule


async def list_rules(session: AsyncSession, event_type: str | None = None) -> list[Rule]:
    query = select(Rule).order_by(Rule.event_type, Rule.name)
    if event_type:
        query = query.where(Rule.event_type == event_type)
    return list((await session.scalars(query)).all())


async def matching(session: AsyncSession, event_type: str) -> list[configuration.RuleSnapshot]:
    """The enabled rules for the event type, by name, from the process's cache (see `configuration`)."""
    return (await configuration.current(session)).rules_for(event_type)


def _fields(data: RuleIn) -> dict:
    values = data.model_dump()
    values["conditions"] = [c.model_dump() for c in data.conditions]
    return values
